"""hydra/launcher=slurm on the loopback cluster (bash launch/slurm_up.sh), driving the toy app in tests/slurm/app."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import (
    ROOT,
    run_slurm_app,
    sacct,
    slurm_app_command,
    slurm_app_env,
    slurm_job_ids,
    slurm_reducer,
    slurm_time,
    stop_slurm_sweep,
)

pytestmark = pytest.mark.slurm


def _assert_reducer_started_after(sweep_dir: Path, job_id: str, cell_rows: list[dict[str, str]]) -> None:
    (row,) = sacct([job_id])
    last_cell_end = max(slurm_time(r["End"]) for r in cell_rows)
    assert slurm_time(row["Start"]) >= last_cell_end, (row, cell_rows)
    submission = next((sweep_dir / ".submitit" / f"reducer_{job_id}").glob("*_submission.sh")).read_text()
    array_id = cell_rows[0]["JobID"].split("_")[0]
    assert f"--dependency=afterany:{array_id}" in submission


def test_glob_sweep_is_one_job_array_and_the_reducer_runs_after_the_last_cell(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    run = run_slurm_app(sweep_dir, "toy=glob(*)")
    assert run.returncode == 0, run.stderr

    jobs = slurm_job_ids(sweep_dir)
    assert sorted(jobs) == [0, 1, 2, 3]
    array_ids = {job.split("_")[0] for job in jobs.values()}
    assert len(array_ids) == 1, f"expected one job array, got {array_ids}"
    rows = sacct(list(jobs.values()))
    assert {row["JobID"]: row["State"] for row in rows} == {job: "COMPLETED" for job in jobs.values()}
    results = [json.loads((sweep_dir / str(i) / "result.json").read_text()) for i in sorted(jobs)]
    assert [r["toy"] for r in results] == ["alpha", "beta", "delta", "gamma"]  # glob options come sorted
    assert {r["array_job_id"] for r in results} == array_ids

    reducer_id, reduced = slurm_reducer(sweep_dir)
    assert reduced["job_id"] == reducer_id
    assert reduced["cells"] == ["alpha", "beta", "delta", "gamma"]
    assert reduced["cwd"] == str(ROOT)  # reducer_workdir defaults to where the sweep was started
    _assert_reducer_started_after(sweep_dir, reducer_id, rows)


def test_a_failing_cell_ends_failed_the_others_complete_and_the_reducer_still_runs(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    run = run_slurm_app(sweep_dir, "toy=alpha,beta", "fail_on=alpha")
    assert run.returncode != 0
    assert "toy cell alpha fails as asked" in run.stderr

    jobs = slurm_job_ids(sweep_dir)
    rows = sacct([jobs[0], jobs[1]])
    assert {row["JobID"]: row["State"] for row in rows} == {jobs[0]: "FAILED", jobs[1]: "COMPLETED"}
    # the launcher waited for the later cell instead of stopping at the first failure
    assert (sweep_dir / "1" / "result.json").exists()

    reducer_id, reduced = slurm_reducer(sweep_dir)
    assert reduced["cells"] == ["beta"]
    _assert_reducer_started_after(sweep_dir, reducer_id, rows)


def _interrupt_and_finish(sweep_dir: Path, interrupt: list[str], *overrides: str) -> subprocess.CompletedProcess[str]:
    """Run a one-cell sweep, run `interrupt` (with {job} filled in) once the cell has done 3 steps, wait for the end."""
    proc = subprocess.Popen(
        slurm_app_command(sweep_dir, "toy=alpha", "steps=12", "step_s=0.4", *overrides),
        cwd=ROOT, env=slurm_app_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    job = None
    try:
        progress = sweep_dir / "0" / "progress.txt"
        deadline = time.monotonic() + 60
        while not (progress.exists() and int(progress.read_text() or 0) >= 3):
            assert proc.poll() is None and time.monotonic() < deadline, "the cell did not reach step 3"
            time.sleep(0.1)
        job = slurm_job_ids(sweep_dir)[0]
        subprocess.run([part.format(job=job) for part in interrupt], check=True, capture_output=True)
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        stop_slurm_sweep(proc, job)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _assert_requeued_and_resumed(sweep_dir: Path) -> None:
    starts = (sweep_dir / "0" / "starts.log").read_text().splitlines()
    assert len(starts) == 2, starts
    assert starts[0] == "start at step 0 restart=0"
    resumed_at = int(re.fullmatch(r"start at step (\d+) restart=1", starts[1]).group(1))
    assert resumed_at >= 3, f"the requeued cell started over: {starts}"
    assert (sweep_dir / "0" / "progress.txt").read_text() == "12"

    job = slurm_job_ids(sweep_dir)[0]
    attempts = sacct([job], attempts=True)
    assert [row["State"] for row in attempts] == ["REQUEUED", "COMPLETED"], attempts
    reducer_id, reduced = slurm_reducer(sweep_dir)
    assert reduced["cells"] == ["alpha"]
    _assert_reducer_started_after(sweep_dir, reducer_id, attempts)


# a requeued job waits cred_expire (5 s) before it starts again
def test_usr2_requeues_a_running_cell_which_resumes_from_its_progress(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    run = _interrupt_and_finish(sweep_dir, ["scancel", "--signal=USR2", "{job}"])
    assert run.returncode == 0, run.stderr
    _assert_requeued_and_resumed(sweep_dir)


# a requeued job waits cred_expire (5 s) before it starts again
def test_a_job_on_the_high_partition_preempts_a_cell_which_resumes(tmp_path: Path) -> None:
    cpus = subprocess.run(["sinfo", "-h", "-p", "debug", "-o", "%c"], capture_output=True, text=True).stdout.strip()
    sweep_dir = tmp_path / "sweep"
    preemptor = ["sbatch", "-p", "high", "-c", cpus, "--mem=100", "-J", "preemptor", "--wrap", "sleep 2"]
    run = _interrupt_and_finish(sweep_dir, preemptor, f"hydra.launcher.cpus_per_task={cpus}")
    assert run.returncode == 0, run.stderr
    _assert_requeued_and_resumed(sweep_dir)


def test_an_unknown_reducer_dependency_fails_before_any_job_is_submitted(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    run = run_slurm_app(sweep_dir, "toy=alpha", "hydra.launcher.reducer_dependency=afterbad")
    assert run.returncode != 0
    assert "reducer_dependency='afterbad'; expected 'afterany' or 'afterok'" in run.stderr
    assert not (sweep_dir / ".submitit").exists()
