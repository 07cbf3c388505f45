"""Benchmark of the reduce path on a synthetic sweep: PGF from counts → bootstrap intervals → analysis →
figures → report, with the time of each stage (wall and CPU seconds).

    .venv/bin/python bench/reduce.py [--models 3] [--seeds 5] [--n-boot 1000] [--out DIR]
    OPENBLAS_NUM_THREADS=2 .venv/bin/python bench/reduce.py     # with threaded BLAS (default here: 1)

The synthetic sweep has models × 14 cells (the base "none" + 13 sources) × 13 targets × seeds, with one
row per question (BLINK val sizes, 117–172 per target). A finetuned run moves each question by a known
"true" PGF (plus seed noise), so the report also checks that the estimates and intervals recover it.
"""
from __future__ import annotations

import os

# The bootstrap runs many small matrix products: BLAS threads only add contention there, most of all on a busy
# machine. Set before numpy loads; override from the environment.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from transfer.analysis import analyze  # noqa: E402
from transfer.pgf import pgf_long  # noqa: E402
from transfer.stats import cell_intervals  # noqa: E402
from transfer.tasks import BASELINE, TASK_NAMES, TASKS  # noqa: E402


def simulate(n_models: int, n_seeds: int, rng: np.random.Generator) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(per-question predictions, true PGF per model/source/target) of a synthetic sweep."""
    frames, truth = [], []
    for m in range(n_models):
        model = f"synthetic-{[1, 3, 7, 32, 72][m % 5]}B"
        for target in TASK_NAMES:
            n = TASKS[target].val_size
            base = rng.random(n) < rng.uniform(0.35, 0.8)
            frames.append(_rows(model, BASELINE, target, np.tile(base, (n_seeds, 1))))
            true = rng.normal(0.02 + 0.04 * m, 0.12, len(TASK_NAMES)).clip(-0.8, 0.9)
            true[TASK_NAMES.index(target)] = 0.5
            for source, mu in zip(TASK_NAMES, true):
                truth.append((model, source, target, float(mu)))
                mu_seed = (mu + rng.normal(0, 0.03, (n_seeds, 1))).clip(-1, 1)
                k = base.sum()
                flip_up = ~base & (rng.random((n_seeds, n)) < np.maximum(mu_seed, 0))
                p_down = np.minimum(1, np.maximum(-mu_seed, 0) * (n - k) / max(k, 1))   # expected loss = μ·(n − k)
                flip_down = base & (rng.random((n_seeds, n)) < p_down)
                frames.append(_rows(model, source, target, (base | flip_up) & ~flip_down))
    truth_frame = pl.DataFrame(truth, schema=["model", "source_task", "target_task", "pgf_true"], orient="row")
    return pl.concat(frames), truth_frame


def _rows(model: str, source: str, target: str, correct: np.ndarray) -> pl.DataFrame:
    seeds, n = correct.shape
    return pl.DataFrame({"model": model, "source_task": source, "target_task": target,
                         "seed": np.repeat(np.arange(seeds), n).astype(str), "idx": np.tile(np.arange(n), seeds),
                         "correct": correct.ravel()})


def matrix_from_counts(predictions: pl.DataFrame) -> pl.DataFrame:
    """The reducer's own path: per-cell counts (as in scores.parquet), then PGF from counts."""
    scores = (predictions.group_by("model", "source_task", "seed", "target_task")
              .agg(pl.len().alias("n"), pl.col("correct").cast(pl.Int64).sum().alias("correct"))
              .with_columns((pl.col("correct") / pl.col("n")).alias("accuracy")))
    return pgf_long(scores).with_columns(pl.col("seed").cast(pl.String))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: a temporary one)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_reduce_"))

    stages: list[tuple[str, float, float]] = []

    def timed(name, fn, *a, **kw):
        wall, cpu = time.perf_counter(), time.process_time()
        value = fn(*a, **kw)
        stages.append((name, time.perf_counter() - wall, time.process_time() - cpu))
        return value

    predictions, truth = timed("simulate (not counted)", simulate, args.models, args.seeds, np.random.default_rng(0))
    pgf = timed("PGF matrix from counts", matrix_from_counts, predictions)
    intervals = timed("bootstrap intervals", cell_intervals, predictions, n_boot=args.n_boot)
    result = timed("analyze (total)", analyze, pgf, out, intervals=intervals,
                   setup={"bench": "synthetic", "models": args.models, "seeds": args.seeds, "n_boot": args.n_boot})
    counted = [s for s in stages if not s[0].startswith(("simulate", "analyze"))]
    total_wall = sum(s[1] for s in counted) + stages[-1][1]
    total_cpu = sum(s[2] for s in counted) + stages[-1][2]

    print(f"synthetic sweep: {args.models} models x 14 cells x 13 targets x {args.seeds} seeds, "
          f"{predictions.height:,} prediction rows, {intervals.height} cells, n_boot={args.n_boot}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}, {os.cpu_count()} CPUs")
    print(f"{'stage':<28}{'wall s':>8}{'cpu s':>8}")
    for name, wall, cpu in stages:
        print(f"{name:<28}{wall:>8.3f}{cpu:>8.3f}")
    for name, seconds in result["timings"].items():
        print(f"{'  analyze: ' + name:<28}{seconds:>8.3f}")
    print(f"{'TOTAL (counted stages)':<28}{total_wall:>8.3f}{total_cpu:>8.3f}   target <= 5 s")
    check = intervals.join(truth, on=["model", "source_task", "target_task"])
    coverage = ((check["ci_low"] <= check["pgf_true"]) & (check["pgf_true"] <= check["ci_high"])).mean()
    corr = np.corrcoef(check["pgf_mean"].to_numpy(), check["pgf_true"].to_numpy())[0, 1]
    print(f"recovery: corr(estimate, true PGF) = {corr:.3f}; 95% intervals cover the true PGF in {coverage:.1%} "
          f"of cells (seed noise is part of the truth's spread, so ~95% is expected)")
    print(f"report: {result['figures']['report']}")


if __name__ == "__main__":
    main()
