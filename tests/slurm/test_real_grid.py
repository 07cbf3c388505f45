"""The real cells on the loopback cluster (bash launch/slurm_up.sh): `python -m transfer.run -m hydra/launcher=slurm`.

The whole grid as one job array gives the local launcher's matrices; a failing cell ends FAILED while the
reducer still runs and names it; a cell preempted with USR2 mid-training resumes from its checkpoint and
scores exactly as an uninterrupted run.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import polars as pl
import pytest

from tests.helpers import (
    ROOT,
    cells_command,
    hydra_sweep_dir,
    run_cells,
    sacct,
    slurm_cells_env,
    slurm_job_ids,
    slurm_time,
    stop_slurm_sweep,
)
from transfer.tasks import BASELINE, TASK_NAMES

MODELS = ["llava", "qwen", "idefics"]
STEPS = 60   # training steps of the preempted cell: long enough for USR2 to land mid-training
pytestmark = pytest.mark.slurm


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """Generated data and base models, shared by every run of this module (built once, under a file lock)."""
    return tmp_path_factory.mktemp("cache")


def _reducer_row(sweep_dir: Path) -> dict[str, str]:
    job = (sweep_dir / "reducer_job.txt").read_text().strip()
    (row,) = sacct([job], timeout_s=300)
    return row


def _frame(path: Path) -> pl.DataFrame:
    return pl.read_csv(path).sort(pl.first())


@pytest.mark.slow  # the 42 cells twice: locally and as a job array
def test_the_grid_as_a_job_array_matches_the_local_launcher(tmp_path: Path, cache: Path) -> None:
    grid = ["-m", "model=" + ",".join(MODELS), "source_task=glob(*)", "experiment=test"]
    local = run_cells(tmp_path, cache, *grid, "sweep=local")
    assert local.returncode == 0, local.stderr[-3000:]
    started = time.monotonic()
    slurm = run_cells(tmp_path, cache, *grid, "sweep=slurm", "hydra/launcher=slurm")
    assert slurm.returncode == 0, slurm.stderr[-3000:]
    print(f"SLURM sweep of 42 cells: {time.monotonic() - started:.0f} s")

    sweep_dir = hydra_sweep_dir(tmp_path, "slurm")
    jobs = slurm_job_ids(sweep_dir)
    assert sorted(jobs) == list(range(42))
    assert len({job.split("_")[0] for job in jobs.values()}) == 1, "expected ONE job array"
    rows = sacct(list(jobs.values()), timeout_s=120)
    assert {row["State"] for row in rows} == {"COMPLETED"}, [r for r in rows if r["State"] != "COMPLETED"]
    reducer = _reducer_row(sweep_dir)
    assert reducer["State"] == "COMPLETED", reducer
    assert slurm_time(reducer["Start"]) >= max(slurm_time(row["End"]) for row in rows)

    cells = {(r["model"], r["source_task"]) for r in
             pl.read_parquet(tmp_path / "slurm" / "cells" / "*" / "*" / "*" / "scores.parquet").iter_rows(named=True)}
    assert cells == {(m, s) for m in MODELS for s in [BASELINE, *TASK_NAMES]}
    for model in MODELS:
        for name in (f"pgf_{model}.csv", f"accuracy_{model}.csv"):
            ours, theirs = (_frame(tmp_path / sweep / "reduce" / name) for sweep in ("slurm", "local"))
            assert ours.shape == theirs.shape == ((13, 14) if name.startswith("pgf") else (14, 14))
            assert ours.equals(theirs), f"{name} differs between the SLURM and the local launcher"


# three real cells and the reducer (runs in CI with the cluster up)
def test_a_failing_cell_ends_failed_and_the_reducer_names_it(tmp_path: Path, cache: Path) -> None:
    # a real way for a cell to break: a corrupt finished adapter left in its folder
    adapter = tmp_path / "bad" / "cells" / "qwen" / "Jigsaw" / "seed=0" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{ not json")
    run = run_cells(tmp_path, cache, "-m", "hydra/launcher=slurm", "model=qwen", "source_task=none,Counting,Jigsaw",
               "experiment=test", "sweep=bad")
    assert run.returncode != 0

    sweep_dir = hydra_sweep_dir(tmp_path, "bad")
    jobs = slurm_job_ids(sweep_dir)
    rows = sacct([jobs[i] for i in range(3)])
    states = {row["JobID"]: row["State"] for row in rows}
    assert states == {jobs[0]: "COMPLETED", jobs[1]: "COMPLETED", jobs[2]: "FAILED"}, states  # none, Counting, Jigsaw
    reducer = _reducer_row(sweep_dir)
    assert reducer["State"] == "COMPLETED", reducer
    assert slurm_time(reducer["Start"]) >= max(slurm_time(row["End"]) for row in rows)

    summary = json.loads((tmp_path / "bad" / "reduce" / "reduce_summary.json").read_text())
    failed = [m for m in summary["missing"] if m["status"] == "failed"]
    assert [(m["model"], m["source_task"], m["seed"]) for m in failed] == [("qwen", "Jigsaw", 0)]
    assert summary["cells"] == 2
    reducer_log = "".join(p.read_text() for p in (sweep_dir / ".submitit").glob("reducer_*/*_log.*"))
    assert "failed cell qwen/Jigsaw/seed=0" in reducer_log


def _wait_for_checkpoint(cell: Path, proc: subprocess.Popen, timeout_s: float = 300) -> Path:
    """The first complete Trainer checkpoint of a running cell (trainer_state.json is written last)."""
    deadline = time.monotonic() + timeout_s
    while True:
        done = sorted((cell / "checkpoints").glob("checkpoint-*/trainer_state.json"))
        if done:
            return done[0].parent
        assert proc.poll() is None, f"the sweep ended before a checkpoint: {proc.communicate()[1][-3000:]}"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.2)


def _scores(outputs: Path, sweep: str) -> pl.DataFrame:
    cell = outputs / sweep / "cells" / "qwen" / "Counting" / "seed=0"
    return pl.read_parquet(cell / "scores.parquet").select("target_task", "n", "correct", "accuracy", "train_steps")


def _predictions(outputs: Path, sweep: str) -> pl.DataFrame:
    cell = outputs / sweep / "cells" / "qwen" / "Counting" / "seed=0"
    return pl.read_parquet(cell / "predictions.parquet").sort("target_task", "idx")


# one cell uninterrupted, one preempted and requeued (cred_expire 5 s)
def test_usr2_requeues_a_training_cell_which_resumes_from_its_checkpoint(tmp_path: Path, cache: Path) -> None:
    cell_args = ["model=qwen", "source_task=Counting", "experiment=test", f"train.steps={STEPS}", "train.save_steps=5",
                 "targets=[Counting,Jigsaw,Art_Style]"]
    reference = run_cells(tmp_path, cache, *cell_args, "sweep=reference")
    assert reference.returncode == 0, reference.stderr[-3000:]

    proc = subprocess.Popen(cells_command(cache, "-m", "hydra/launcher=slurm", *cell_args, "sweep=preempted"), cwd=ROOT,
                            env=slurm_cells_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sweep_dir, job = hydra_sweep_dir(tmp_path, "preempted"), None
    try:
        checkpoint = _wait_for_checkpoint(tmp_path / "preempted" / "cells" / "qwen" / "Counting" / "seed=0", proc)
        job = slurm_job_ids(sweep_dir)[0]
        subprocess.run(["scancel", "--signal=USR2", job], check=True)
        _, stderr = proc.communicate(timeout=600)
    finally:
        stop_slurm_sweep(proc, job)
    assert proc.returncode == 0, stderr[-3000:]

    attempts = sacct([job], attempts=True)
    assert [row["State"] for row in attempts] == ["REQUEUED", "COMPLETED"], attempts
    log = "".join(p.read_text() for p in (sweep_dir / "qwen" / "Counting" / "seed=0").glob("*.log"))
    steps = [int(line.split("(step ")[1].split(" ")[0]) for line in log.splitlines()
             if "resuming training from" in line]
    assert len(steps) == 1 and steps[0] >= int(checkpoint.name.split("-")[1]), log[-3000:]
    assert steps[0] < STEPS, "the checkpoint came from a finished training, not from mid-training"
    assert _scores(tmp_path, "preempted").equals(_scores(tmp_path, "reference"))
    ours, theirs = _predictions(tmp_path, "preempted"), _predictions(tmp_path, "reference")
    assert ours["predicted"].to_list() == theirs["predicted"].to_list()
    for a, b in zip(ours["loglik"].to_list(), theirs["loglik"].to_list()):
        assert a == pytest.approx(b, abs=1e-5)


# a one-process base cell, then the two-task cell
def test_a_cell_with_two_tasks_trains_as_one_process_group_and_rank_0_records(tmp_path: Path, cache: Path) -> None:
    """tasks_per_node=2 (as slurm_gpu8 does with 8): both SLURM tasks train together, only rank 0 writes."""
    # the embedded base model is pretrained first by one process: a cold multi-process cell would deadlock while
    # pretraining (rank 0 trains it under a file lock and waits for rank 1, which waits for the lock)
    base = run_cells(tmp_path, cache, "model=qwen", "source_task=none", "experiment=test", "targets=[Counting]",
                "sweep=base")
    assert base.returncode == 0, base.stderr[-3000:]
    run = run_cells(tmp_path, cache, "-m", "hydra/launcher=slurm", "hydra.launcher.tasks_per_node=2", "model=qwen",
               "source_task=Counting", "experiment=test", "targets=[Counting]", "sweep=two",
               "hydra.launcher.reducer_command=null")
    assert run.returncode == 0, run.stderr[-3000:]
    sweep_dir = hydra_sweep_dir(tmp_path, "two")
    job = slurm_job_ids(sweep_dir)[0]
    assert [row["State"] for row in sacct([job])] == ["COMPLETED"]
    logs = [(sweep_dir / ".submitit" / job / f"{job}_{rank}_log.out").read_text() for rank in (0, 1)]
    for rank, log in enumerate(logs):
        assert f"global_rank={rank}(2)" in log
        assert "4/4 step" in log                       # every task ran the training steps
    assert ["finished cell" in log for log in logs] == [True, False]
    assert (tmp_path / "two" / "cells" / "qwen" / "Counting" / "seed=0" / "scores.parquet").exists()
    assert len(list((tmp_path / "two" / "wandb").glob("offline-run-*"))) == 1
