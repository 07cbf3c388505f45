"""The score record: schema, cell folders, provenance and reading a sweep into polars.

A cell is done iff its `scores.parquet` exists; predictions are written first, scores last.
"""
from __future__ import annotations

import json
import logging
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

log = logging.getLogger("transfer")
SCORES, PREDICTIONS, FAILED = "scores.parquet", "predictions.parquet", "FAILED.json"

SCORE_SCHEMA = {
    "sweep": pl.String, "model": pl.String, "checkpoint": pl.String, "data_source": pl.String,
    "eval_mode": pl.String, "calibration": pl.String, "source_task": pl.String, "seed": pl.Int64,
    "target_task": pl.String, "n": pl.Int64, "correct": pl.Int64, "accuracy": pl.Float64, "chance": pl.Float64,
    "correct_raw": pl.Int64, "accuracy_raw": pl.Float64, "unparsed": pl.Int64, "unparsed_share": pl.Float64,
    "data_revision": pl.String, "train_data_revision": pl.String,
    "train_examples": pl.Int64, "train_steps": pl.Int64, "train_seconds": pl.Float64, "eval_seconds": pl.Float64,
    "config_hash": pl.String, "git_commit": pl.String, "created_at": pl.String,
}
PREDICTION_SCHEMA = {
    "sweep": pl.String, "model": pl.String, "source_task": pl.String, "seed": pl.Int64, "idx": pl.String,
    "target_task": pl.String, "gold": pl.Int64, "predicted": pl.Int64, "correct": pl.Boolean,
    "predicted_raw": pl.Int64, "loglik": pl.List(pl.Float64), "text": pl.String,
}


def cell_dir(sweep_dir: Path, model: str, source_task: str, seed: int) -> Path:
    return sweep_dir / "cells" / model / source_task / f"seed={seed}"


def git_commit(repo: Path | None = None) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=repo or Path(__file__).parent,
                             capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=repo or Path(__file__).parent, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_record(path: Path, columns: list[str] | None = None) -> pl.DataFrame | None:
    """A cell's parquet record, or None when it is missing or unreadable (truncated, corrupt): not finished."""
    if not path.exists():
        return None
    try:
        return pl.read_parquet(path, columns=columns)
    except Exception as err:   # noqa: BLE001 - polars raises several types for a damaged file
        log.warning("unreadable record %s (%s): the cell counts as not finished", path, str(err).splitlines()[0])
        return None


def finished_hash(cell: Path) -> str | None:
    """The config_hash of a finished cell: its scores and predictions both readable; else None."""
    scores = read_record(cell / SCORES, ["config_hash"])
    if scores is None or scores.is_empty() or read_record(cell / PREDICTIONS, ["idx"]) is None:
        return None
    return scores["config_hash"][0]


def unreadable_cells(sweep_dir: Path) -> list[dict]:
    """Cells whose scores exist but whose records cannot be read: holes, named by the file."""
    out = []
    for scores in sorted((sweep_dir / "cells").glob(f"*/*/seed=*/{SCORES}")):
        bad = [p for p in (scores, scores.parent / PREDICTIONS) if read_record(p, None if p == scores else ["idx"])
               is None]
        if bad:
            out.append({"cell": str(scores.parent), "error": f"unreadable record {bad[0]}"})
    return out


def read_sweep(sweep_dir: Path, name: str = SCORES) -> pl.DataFrame:
    """Concatenate every finished cell's `name` parquet of a sweep (empty frame if there is none); cells with an
    unreadable record are left out (unreadable_cells lists them)."""
    cells = [p.parent for p in sorted((sweep_dir / "cells").glob(f"*/*/seed=*/{SCORES}"))]
    frames = [read_record(cell / name) for cell in cells if finished_hash(cell) is not None]
    frames = [f for f in frames if f is not None]
    if not frames:
        return pl.DataFrame(schema=SCORE_SCHEMA) if name == SCORES else pl.DataFrame()
    return pl.concat(frames, how="diagonal_relaxed")


def failed_cells(sweep_dir: Path) -> list[dict]:
    """Markers left by cells that raised (and have not finished since)."""
    out = []
    for marker in sorted((sweep_dir / "cells").glob(f"*/*/seed=*/{FAILED}")):
        if not (marker.parent / SCORES).exists():
            out.append(json.loads(marker.read_text()))
    return out
