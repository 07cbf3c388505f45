"""Resource classes on the loopback cluster (bash launch/slurm_up.sh): one job array per `model.resources`, with
its own --cpus-per-task, --mem and time limit, and one reducer job that waits for every array; a partial grid of
real cells on SLURM, completed by the reducer job."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import polars as pl
import pytest

from tests.helpers import hydra_sweep_dir, run_cells, run_slurm_app, sacct, slurm_reducer, slurm_time

pytestmark = pytest.mark.slurm
FIELDS = ["JobID", "State", "Start", "End", "ReqCPUS", "ReqMem", "Timelimit"]


def _accounting(job_ids: list[str]) -> dict[str, dict[str, str]]:
    """sacct's row per job (array tasks as <array>_<i>), once every job has ended."""
    sacct(job_ids)   # waits until all have ended
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-o", ",".join(FIELDS), "-j", ",".join(job_ids)],
                         capture_output=True, text=True, check=True).stdout
    return {row["JobID"]: row for row in (dict(zip(FIELDS, line.split("|"))) for line in out.splitlines() if line)}


def _gigabytes(req_mem: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)([KMGT])n?c?", req_mem).groups()
    return float(value) * {"K": 2**-20, "M": 2**-10, "G": 1, "T": 2**10}[unit]


def _dependency(sweep_dir: Path, reducer_id: str) -> str:
    submission = next((sweep_dir / ".submitit" / f"reducer_{reducer_id}").glob("*_submission.sh")).read_text()
    return re.search(r"--dependency=(\S+)", submission).group(1)


def test_two_resource_classes_are_two_job_arrays_and_the_reducer_waits_for_both(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    run = run_slurm_app(sweep_dir, "toy=alpha,beta", "model=small,large")
    assert run.returncode == 0, run.stderr

    results = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/result.json"))]
    assert sorted((r["model"], r["toy"]) for r in results) == [
        ("large", "alpha"), ("large", "beta"), ("small", "alpha"), ("small", "beta")]
    arrays = {model: {r["array_job_id"] for r in results if r["model"] == model} for model in ("small", "large")}
    assert all(len(ids) == 1 for ids in arrays.values()) and arrays["small"] != arrays["large"], arrays
    cells = [f"{r['array_job_id']}_{r['array_task_id']}" for r in results]
    rows = _accounting(cells)
    assert {row["State"] for row in rows.values()} == {"COMPLETED"}
    for model, cpus, mem_gb, limit in (("small", "1", 1, "00:20:00"), ("large", "2", 2, "00:30:00")):
        (array,) = arrays[model]
        mine = [row for job, row in rows.items() if job.startswith(f"{array}_")]
        assert len(mine) == 2
        assert {(row["ReqCPUS"], _gigabytes(row["ReqMem"]), row["Timelimit"]) for row in mine} == {
            (cpus, mem_gb, limit)}

    reducer_id, reduced = slurm_reducer(sweep_dir)
    assert reduced["cells"] == ["alpha", "alpha", "beta", "beta"]
    assert _dependency(sweep_dir, reducer_id) == f"afterany:{arrays['small'].pop()}:{arrays['large'].pop()}"
    (reducer,) = _accounting([reducer_id]).values()
    assert slurm_time(reducer["Start"]) >= max(slurm_time(row["End"]) for row in rows.values())


# two real cells and the reducer job (runs in CI with the cluster up)
def test_a_partial_grid_of_real_cells_runs_in_its_models_class_and_the_reducer_job_completes_it(tmp_path) -> None:
    run = run_cells(tmp_path, tmp_path / "cache", "-m", "hydra/launcher=slurm", "model=qwen",
                     "source_task=none,Counting,Jigsaw", "experiment=test", "pretrain.steps=2",
                     "pretrain.size_per_kind=8", "sweep=partial", "grid.cells=[qwen/Counting/0]",
                     "model.resources={gpus:0,cpus:1,mem_gb:3,time_min:30}")
    assert run.returncode == 0, run.stderr[-3000:]
    sweep_dir = hydra_sweep_dir(tmp_path, "partial")
    jobs = sorted(p.name for p in (sweep_dir / ".submitit").iterdir() if re.fullmatch(r"\d+_\d+", p.name))
    assert len(jobs) == 2 and len({j.split("_")[0] for j in jobs}) == 1      # none and Counting, one array
    rows = _accounting(jobs)
    assert {(r["State"], r["ReqCPUS"], _gigabytes(r["ReqMem"]), r["Timelimit"]) for r in rows.values()} == {
        ("COMPLETED", "1", 3, "00:30:00")}                                   # model.resources, not the launcher's
    cells = tmp_path / "partial" / "cells" / "qwen"
    assert sorted(p.parent.parent.name for p in cells.glob("*/seed=0/scores.parquet")) == ["Counting", "none"]

    reducer_id = (sweep_dir / "reducer_job.txt").read_text().strip()
    (reducer,) = _accounting([reducer_id]).values()
    assert reducer["State"] == "COMPLETED" and _dependency(sweep_dir, reducer_id) == f"afterany:{jobs[0][:-2]}"
    out = tmp_path / "partial" / "reduce"
    completion = pl.read_parquet(out / "completion.parquet")
    assert completion.filter(pl.col("observed"))["source_task"].unique().to_list() == ["Counting"]
    assert completion.height == 13 * 13
    assert "qwen/Jigsaw/0" in pl.read_csv(out / "next_cells.csv")["cell"].to_list()
