"""Re-score a finished sweep's stored predictions under a new answer key, into a new sweep, without running a model.

    python -m transfer.rescore sweep=NAME key=/data/BLINK-2025-09 [out=NAME-rescored]
    python -m transfer.rescore sweep=NAME key=answers.csv               # a table: idx, answer ("(B)", "B" or 1)

A key is a BLINK-format snapshot (every task's val answers are read) or a table of idx and answer. Each cell's
predicted choices (and, for log-likelihood scoring, its raw choices) are kept; gold, correct and the scores are
recomputed. Questions the key does not list keep their gold; a target the key holds questions of records the key's
data revision, a target it holds none of keeps its old one (a log line and `revision_kept` in rescore.json say which).
The new sweep holds records only (no adapters, no W&B runs); reduce it like any sweep. `rescore.json` in it
lists how many answers changed per task. The questions a cell scored stay the ones it scored: with BLINK's val
split carved by answer, a new key does not move a question between training and evaluation.
"""
from __future__ import annotations

import hashlib
import logging
import shutil
import sys
from pathlib import Path

import hydra
import polars as pl
from omegaconf import DictConfig

from transfer.cli import CONF_DIR, check_overrides, one_line_errors, quiet_libraries, setup_logging
from transfer.spec import RescoreSpec

log = logging.getLogger("transfer")


def read_key(path: Path) -> tuple[dict[str, int], dict[str, str]]:
    """({idx: gold option index}, {task: data revision}) of a BLINK-format snapshot or an idx/answer table."""
    from transfer.data.blink import data_revision, list_configs, read_split

    if path.is_dir():
        gold, revisions = {}, {}
        for task in list_configs(path):
            gold.update({q.idx: q.answer for q in read_split(path, task, "val")})
            revisions[task] = data_revision(path, task, "val")
        return gold, revisions
    table = pl.read_csv(path) if path.suffix == ".csv" else pl.read_parquet(path)
    missing = [c for c in ("idx", "answer") if c not in table.columns]
    if missing:
        raise ValueError(f"key={str(path)!r}: lacks column(s) {', '.join(missing)}; expected idx and answer")
    revision = f"table:{path.name} sha256:{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}"
    return {str(i): _answer_index(a, path) for i, a in table.select("idx", "answer").iter_rows()}, {"*": revision}


def _answer_index(answer, path: Path) -> int:
    if isinstance(answer, int) and not isinstance(answer, bool) and answer >= 0:
        return answer
    text = str(answer).strip().strip("()")
    if len(text) == 1 and text.isalpha() and text.isupper():
        return ord(text) - ord("A")
    raise ValueError(f"key={str(path)!r}: answer {answer!r} is not a letter like (B), B or an option index")


def rescore_cell(predictions: pl.DataFrame, scores: pl.DataFrame, gold: dict[str, int], revisions: dict[str, str],
                 sweep: str) -> tuple[pl.DataFrame, pl.DataFrame, set[tuple[str, str]], set[str]]:
    """A cell's predictions and scores under the new key, the (task, idx) whose answer changed and the targets
    that keep their data revision (the key holds none of their questions)."""
    new_gold = pl.Series([gold.get(i, g) for i, g in zip(predictions["idx"], predictions["gold"])], dtype=pl.Int64)
    changed = predictions.with_columns(new_gold.alias("new_gold")).filter(pl.col("new_gold") != pl.col("gold"))
    predictions = predictions.with_columns(new_gold.alias("gold"), pl.lit(sweep).alias("sweep"))
    raw = "predicted_raw" if "predicted_raw" in predictions.columns else "predicted"
    predictions = predictions.with_columns((pl.col("predicted") == pl.col("gold")).alias("correct"))
    counts = predictions.group_by("target_task").agg(
        pl.len().cast(pl.Int64).alias("n"), pl.col("correct").sum().cast(pl.Int64).alias("correct"),
        (pl.col(raw) == pl.col("gold")).sum().cast(pl.Int64).alias("correct_raw"))
    held = {task for task, idx in predictions.select("target_task", "idx").iter_rows() if idx in gold}
    new_revision = {t: revisions.get(t, revisions.get("*")) for t in held}
    new_revision = {t: r for t, r in new_revision.items() if r is not None}
    columns = [*scores.columns, *(c for c in ("correct_raw", "data_revision") if c not in scores.columns)]
    if "data_revision" not in scores.columns:
        scores = scores.with_columns(pl.lit(None, pl.String).alias("data_revision"))
    scores = (scores.drop("n", "correct", "correct_raw", strict=False)
              .join(counts, on="target_task", how="left")
              .with_columns((pl.col("correct") / pl.col("n")).alias("accuracy"),
                            (pl.col("correct_raw") / pl.col("n")).alias("accuracy_raw"),
                            pl.col("target_task").replace_strict(new_revision, default=pl.col("data_revision"),
                                                                 return_dtype=pl.String).alias("data_revision"),
                            pl.lit(sweep).alias("sweep"))
              .select(columns))
    kept = set(scores["target_task"]) - set(new_revision)
    return predictions, scores, set(changed.select("target_task", "idx").iter_rows()), kept


def rescore_sweep(sweep_dir: Path, key: Path, out_dir: Path) -> dict:
    """Write `out_dir` (a new sweep) with every finished cell of `sweep_dir` re-scored under `key`."""
    from transfer.atomic import write_json, write_parquet
    from transfer.records import PREDICTIONS, SCORES

    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"out={out_dir.name!r}: {out_dir} exists and is not empty; expected a new sweep name")
    cells = sorted((sweep_dir / "cells").glob(f"*/*/seed=*/{SCORES}"))
    if not cells:
        raise FileNotFoundError(f"no finished cells under {sweep_dir / 'cells'}; nothing to re-score")
    gold, revisions = read_key(key)
    changed: set[tuple[str, str]] = set()
    kept: set[str] = set()
    for scores_file in cells:
        cell = scores_file.parent
        predictions, scores, moved, unheld = rescore_cell(pl.read_parquet(cell / PREDICTIONS),
                                                          pl.read_parquet(scores_file), gold, revisions, out_dir.name)
        changed |= moved
        kept |= unheld
        target = out_dir / cell.relative_to(sweep_dir)
        write_parquet(predictions, target / PREDICTIONS)
        write_parquet(scores, target / SCORES)
        for extra in ("split.json", "timings.json"):
            if (cell / extra).exists():
                shutil.copy2(cell / extra, target / extra)
    per_task = {t: sum(task == t for task, _ in changed) for t in sorted({task for task, _ in changed})}
    summary = {"from": str(sweep_dir), "key": str(key), "cells": len(cells), "changed_answers": per_task,
               "revisions": revisions, "revision_kept": sorted(kept)}
    write_json(summary, out_dir / "rescore.json")
    if kept:
        log.warning("the key holds no question of %s: their gold and data revision are kept", ", ".join(sorted(kept)))
    log.info("re-scored %d cells of %s under %s into %s (answers changed: %s)", len(cells), sweep_dir.name, key,
             out_dir, per_task or "none")
    return summary


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="rescore")
@one_line_errors
def main(cfg: DictConfig) -> None:
    spec = RescoreSpec.from_config(cfg)
    outputs = Path(spec.paths.outputs)
    rescore_sweep(outputs / spec.sweep, Path(spec.key), outputs / (spec.out or f"{spec.sweep}-rescored"))


if __name__ == "__main__":
    check_overrides(sys.argv[1:], "rescore")
    quiet_libraries()
    setup_logging()
    main()
