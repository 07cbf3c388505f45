"""Reading, validating and reshaping PGF tables: long polars frames → task-ordered matrices."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl

from transfer.tasks import BASELINE, TASK_NAMES

PGF_COLUMNS = ("model", "source_task", "target_task", "seed", "pgf")
PAPER_COLUMNS = ("seed", "ft_task", "task", "perfection_gap_factor")
ZERO_TOLERANCE = 1e-12   # |PGF| below this is 0: seed means of exact fractions leave float residue
_PAPER_RENAMES = {"ft_task": "source_task", "task": "target_task", "perfection_gap_factor": "pgf"}


def read_pgf_table(path: str | Path) -> pl.DataFrame:
    """Read a PGF table (CSV or parquet) in the paper layout or this project's pgf.parquet layout.

    The model comes from a `model` column when present, else from the file stem without a `pgf_` prefix
    (`pgf_qwen2.5vl-32B-instruct.csv` → `qwen2.5vl-32B-instruct`).
    """
    path = Path(path)
    if path.suffix not in (".csv", ".parquet"):
        raise ValueError(f"unsupported PGF table {path.name!r}; expected a .csv or .parquet file")
    try:
        frame = (pl.read_csv(path, schema_overrides={"seed": pl.String}) if path.suffix == ".csv"
                 else pl.read_parquet(path))
    except Exception as err:   # noqa: BLE001 - polars raises several types for a damaged file
        raise ValueError(f"{path}: unreadable PGF table ({type(err).__name__}: {str(err).splitlines()[0]})") from None
    default_model = path.stem.removeprefix("pgf_")
    return normalise_pgf(frame, default_model=default_model, origin=path.name)


def normalise_pgf(frame: pl.DataFrame, default_model: str | None = None, origin: str = "PGF frame") -> pl.DataFrame:
    """Bring either layout to `model, source_task, target_task, seed (str), pgf` (+ optional accuracy columns)."""
    if all(c in frame.columns for c in PAPER_COLUMNS) and "pgf" not in frame.columns:
        frame = frame.rename(_PAPER_RENAMES)
    if "model" not in frame.columns and default_model is not None:
        frame = frame.with_columns(pl.lit(default_model).alias("model"))
    missing = [c for c in PGF_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{origin} lacks columns {missing}; expected {list(PGF_COLUMNS)} "
                         f"or the paper layout {list(PAPER_COLUMNS)}")
    extra = [c for c in ("base_accuracy", "accuracy") if c in frame.columns]
    frame = frame.select(*PGF_COLUMNS, *extra).with_columns(
        pl.col("model", "source_task", "target_task", "seed").cast(pl.String), pl.col("pgf").cast(pl.Float64))
    validate_pgf(frame, origin)
    return frame


def validate_pgf(frame: pl.DataFrame, origin: str = "PGF frame") -> None:
    """One-line errors for missing columns, unknown tasks, missing values and duplicated cells."""
    missing = [c for c in PGF_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{origin} lacks columns {missing}; expected {list(PGF_COLUMNS)}")
    if frame.height == 0:
        raise ValueError(f"{origin} has no rows")
    for column in ("source_task", "target_task"):
        unknown = sorted(set(frame[column].unique().to_list()) - set(TASK_NAMES))
        if unknown:
            hint = f" ({BASELINE!r} is the base model, not a finetuned source)" if BASELINE in unknown else ""
            raise ValueError(f"{origin} has unknown {column} {unknown}{hint}; expected names from {TASK_NAMES}")
    bad = frame.filter(pl.col("pgf").is_null() | pl.col("pgf").is_nan() | pl.col("pgf").is_infinite())
    if bad.height:
        row = bad.row(0, named=True)
        raise ValueError(f"{origin} has {bad.height} missing/non-finite pgf values, e.g. {row}")
    dup = frame.group_by("model", "source_task", "target_task", "seed").len().filter(pl.col("len") > 1)
    if dup.height:
        raise ValueError(f"{origin} has duplicated cells, e.g. {dup.row(0, named=True)}")


def ordered_tasks(names: list[str] | set[str]) -> list[str]:
    """The given task names in matrix order (TASK_NAMES)."""
    names = set(names)
    return [t for t in TASK_NAMES if t in names]


def model_size(name: str) -> float:
    """Parameter count in billions parsed from a model name ('…-32B-…' → 32.0), +inf when absent."""
    match = re.search(r"(\d+(?:\.\d+)?)\s*[bB](?![a-zA-Z])", name)
    if match is None:
        match = re.search(r"(\d+(?:\.\d+)?)\s*[mM](?![a-zA-Z])", name)
        return float(match.group(1)) / 1000 if match else float("inf")
    return float(match.group(1))


def ordered_models(pgf: pl.DataFrame) -> list[str]:
    """Models sorted by size parsed from the name (then by name), so size trends read left to right."""
    return sorted(pgf["model"].unique().to_list(), key=lambda m: (model_size(m), m))


def model_tasks(pgf: pl.DataFrame, model: str) -> list[str]:
    """Tasks of one model's matrix: every task seen as source or target, in matrix order."""
    rows = _model_rows(pgf, model)
    return ordered_tasks(set(rows["source_task"].to_list()) | set(rows["target_task"].to_list()))


def _model_rows(pgf: pl.DataFrame, model: str) -> pl.DataFrame:
    rows = pgf.filter(pl.col("model") == model)
    if rows.height == 0:
        raise ValueError(f"unknown model {model!r}; expected one of {ordered_models(pgf)}")
    return rows


def _fill(tasks: list[str], sources: list[str], targets: list[str], values: np.ndarray) -> np.ndarray:
    position = {t: i for i, t in enumerate(tasks)}
    matrix = np.full((len(tasks), len(tasks)), np.nan)
    matrix[[position[s] for s in sources], [position[t] for t in targets]] = values
    return matrix


def seed_mean_matrix(pgf: pl.DataFrame, model: str, column: str = "pgf") -> tuple[list[str], np.ndarray]:
    """(tasks, T×T matrix) of the seed-mean value; rows = source, cols = target; NaN where no run exists."""
    rows = _model_rows(pgf, model)
    tasks = model_tasks(pgf, model)
    mean = rows.group_by("source_task", "target_task").agg(pl.col(column).mean())
    matrix = _fill(tasks, mean["source_task"].to_list(), mean["target_task"].to_list(), mean[column].to_numpy())
    return tasks, np.where(np.abs(matrix) < ZERO_TOLERANCE, 0.0, matrix)   # −1e-18 from float sums is a 0


def seed_std_matrix(pgf: pl.DataFrame, model: str) -> tuple[list[str], np.ndarray]:
    """(tasks, T×T matrix) of the sample std over seeds (NaN with a single seed)."""
    rows = _model_rows(pgf, model)
    tasks = model_tasks(pgf, model)
    std = rows.group_by("source_task", "target_task").agg(pl.col("pgf").std(ddof=1))
    return tasks, _fill(tasks, std["source_task"].to_list(), std["target_task"].to_list(),
                        std["pgf"].fill_null(np.nan).to_numpy())


def seed_cube(pgf: pl.DataFrame, model: str) -> tuple[list[str], list[str], np.ndarray]:
    """(tasks, seeds, S×T×T array) of per-seed PGFs; NaN where a seed lacks a cell."""
    rows = _model_rows(pgf, model)
    tasks = model_tasks(pgf, model)
    seeds = sorted(rows["seed"].unique().to_list())
    cube = np.stack([
        _fill(tasks, r["source_task"].to_list(), r["target_task"].to_list(), r["pgf"].to_numpy())
        for r in (rows.filter(pl.col("seed") == s) for s in seeds)])
    return tasks, seeds, cube


def interval_mask(intervals: pl.DataFrame, model: str, tasks: list[str]) -> np.ndarray | None:
    """T×T boolean mask, True where the cell's interval excludes 0; None when the model has no intervals."""
    rows = intervals.filter(
        (pl.col("model") == model) & pl.col("source_task").is_in(tasks) & pl.col("target_task").is_in(tasks))
    if rows.height == 0:
        return None
    significant = ((rows["ci_low"] > 0) | (rows["ci_high"] < 0)).to_numpy().astype(float)
    mask = _fill(tasks, rows["source_task"].to_list(), rows["target_task"].to_list(), significant)
    return np.where(np.isnan(mask), True, mask > 0)
