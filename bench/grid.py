"""Benchmark: the full default embedded grid (3 families x 14 cells, 1 seed) in a fresh output folder.

Runs the real CLI twice: (1) with an empty cache (data generation and pretraining included, as on a
fresh clone) and (2) with the cache kept and a new sweep (base models cached). Prints the wall time, the time
in model forward/backward (training steps and evaluation forwards) and its share, each other part, and peak
RSS. Extra arguments go to the grid command. The 4-seed validation grid runs
once, into a named sweep, e.g. the `science` sweep that `tests/test_science.py` reads:

    python bench/grid.py [--keep DIR] [overrides...]
    python bench/grid.py --once --keep outputs --sweep science seed=0,1,2,3
    python bench/grid.py hydra.launcher.jobs=2          # two cells at a time, one torch thread each

The parts inside cells are summed over cells (cell-seconds); with cells side by side they add up to more than
the wall time, and "cells at a time" says by how much.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ["model_compute", "trainer_setup", "data_generation", "preprocessing", "model_load", "io", "wandb",
         "lock_wait"]
LABELS = {"model_compute": "model forward/backward", "trainer_setup": "Trainer + DeepSpeed init",
          "data_generation": "data generation", "preprocessing": "preprocessing (encode, collate)",
          "model_load": "model loading", "io": "I/O (records, caches)", "wandb": "W&B",
          "lock_wait": "waiting on another cell's lock (suite, base)"}


def run_grid(outputs: Path, sweep: str, extra: list[str]) -> dict:
    env = {**os.environ, "TRANSFER_OUTPUTS": str(outputs), "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "transfer.run", "-m", "model=llava,qwen,idefics", "source_task=glob(*)",
           f"sweep={sweep}", *extra]
    start = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.time() - start
    if proc.returncode:
        sys.exit(f"grid failed:\n{proc.stderr[-3000:]}")
    rss_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    cells = [json.loads(p.read_text()) for p in (outputs / sweep / "cells").glob("*/*/seed=*/timings.json")]
    cell_seconds = sum(c["wall"] for c in cells)
    parts = {k: sum(c.get(k, 0.0) for c in cells) for k in PARTS}
    parts["other in cells (Python, Hydra, Trainer loop)"] = cell_seconds - sum(parts.values())
    first_start = min(c["started_at"] for c in cells)
    last_end = max(c["started_at"] + c["wall"] for c in cells)
    outside = {"start-up and imports": first_start - start, "reducer": start + wall - last_end}
    return {"wall": wall, "cells": len(cells), "cell_seconds": cell_seconds, "parts": parts, "outside": outside,
            "at_a_time": cell_seconds / (last_end - first_start), "peak_rss_gib": rss_gib}


def report(title: str, r: dict) -> None:
    print(f"\n== {title}: {r['cells']} cells, wall {r['wall']:.0f} s ({r['wall'] / 60:.1f} min), "
          f"{r['at_a_time']:.2f} cells at a time, peak RSS {r['peak_rss_gib']:.2f} GiB (the largest one process)")
    print(f"  inside cells: {r['cell_seconds']:.0f} cell-seconds")
    for key, seconds in r["parts"].items():
        print(f"  {LABELS.get(key, key):46s} {seconds:8.1f} s  {100 * seconds / r['cell_seconds']:5.1f} %")
    print("  outside cells:")
    for key, seconds in r["outside"].items():
        print(f"  {key:46s} {seconds:8.1f} s  {100 * seconds / r['wall']:5.1f} % of wall")


def compute_share(r: dict) -> float:
    return r["parts"]["model_compute"] / r["cell_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="output folder to use and keep (default: a temporary one)")
    parser.add_argument("--once", action="store_true", help="only the fresh run (e.g. for the 4-seed grid)")
    parser.add_argument("--sweep", default="bench_fresh", help="sweep name of the fresh run")
    args, extra = parser.parse_known_args()
    outputs = args.keep or Path(tempfile.mkdtemp(prefix="transfer-bench-"))
    cached_before = (outputs / ".cache").exists()
    fresh = run_grid(outputs, args.sweep, extra)
    report(f"fresh (empty cache: data generation + pretraining){' [cache was NOT empty]' if cached_before else ''}",
           fresh)
    if args.once:
        print(f"target (4-seed grid, fresh) <= 40 min: {fresh['wall'] <= 2400}; outputs in {outputs}")
        return
    cached = run_grid(outputs, "bench_cached", extra)
    report("cached base models (new sweep)", cached)
    print(f"\nratios: cached/fresh wall {cached['wall'] / fresh['wall']:.2f}; "
          f"forward/backward share of cell time fresh {compute_share(fresh):.0%}, cached {compute_share(cached):.0%}")
    print(f"targets: fresh <= 15 min: {fresh['wall'] <= 900}; cached <= 10 min: {cached['wall'] <= 600}; "
          f"forward/backward >= 70 %: {compute_share(cached) >= 0.7}; "
          f"peak RSS <= 4 GiB: {max(fresh['peak_rss_gib'], cached['peak_rss_gib']) <= 4}")
    print(f"outputs in {outputs}")


if __name__ == "__main__":
    main()
