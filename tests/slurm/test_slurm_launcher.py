"""hydra/launcher=slurm on the loopback cluster (bash launch/slurm_up.sh), driving the toy app in tests/slurm/app."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = Path(__file__).resolve().parent / "app"
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL"}


pytestmark = pytest.mark.slurm


def _app_command(sweep_dir: Path, *overrides: str) -> list[str]:
    return [
        sys.executable, str(APP / "app.py"), "-m", "hydra/launcher=slurm",
        f"hydra.searchpath=[file://{ROOT}/conf]",
        f"hydra.sweep.dir={sweep_dir}",
        "hydra.launcher.validate=false",   # the toy app has no cell spec
        f"hydra.launcher.reducer_command='python {APP}/reduce.py ${{hydra.sweep.dir}}'",
        *overrides,
    ]  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def _run_sweep(sweep_dir: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _app_command(sweep_dir, *overrides), cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120
    )


def _cell_job_ids(sweep_dir: Path) -> dict[int, str]:
    """Cell index -> SLURM job id, from submitit's per-job folders ("<array>_<i>", or "<id>" for one cell)."""
    names = [p.name for p in (sweep_dir / ".submitit").iterdir() if re.fullmatch(r"\d+(_\d+)?", p.name)]
    arrayed = [n for n in names if "_" in n]
    if not arrayed:
        return {0: names[0]}
    return {int(n.split("_")[1]): n for n in arrayed}


def _sacct(job_ids: list[str], attempts: bool = False, timeout_s: float = 60) -> list[dict[str, str]]:
    """sacct rows (one per job; with attempts=True one per run attempt) once every job has ended."""
    fields = ["JobID", "State", "Start", "End"]
    cmd = ["sacct", "-X", "-n", "-P", "-o", ",".join(fields), "-j", ",".join(job_ids)] + (["-D"] if attempts else [])
    deadline = time.monotonic() + timeout_s
    while True:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rows = [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line]
        final = {row["JobID"]: row["State"].split()[0] for row in rows}  # the last attempt of each job
        if set(final) >= set(job_ids) and set(final.values()) <= TERMINAL:
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"jobs {job_ids} did not all end within {timeout_s}s: {rows}")
        time.sleep(0.5)


def _stop_if_running(proc: subprocess.Popen, job: str | None) -> None:
    """After a failed wait: kill the sweep command and cancel its SLURM array, so no job outlives the test."""
    if proc.poll() is None:
        proc.kill()
        if job:
            subprocess.run(["scancel", job.split("_")[0]], check=False)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _reducer(sweep_dir: Path) -> tuple[str, dict]:
    """The reducer's job id (reducer_job.txt) and what it recorded (reduced.json), after it has ended."""
    job_id = (sweep_dir / "reducer_job.txt").read_text().strip()
    (row,) = _sacct([job_id])
    assert row["State"] == "COMPLETED", row
    return job_id, json.loads((sweep_dir / "reduced.json").read_text())


def _assert_reducer_started_after(sweep_dir: Path, job_id: str, cell_rows: list[dict[str, str]]) -> None:
    (row,) = _sacct([job_id])
    last_cell_end = max(_time(r["End"]) for r in cell_rows)
    assert _time(row["Start"]) >= last_cell_end, (row, cell_rows)
    submission = next((sweep_dir / ".submitit" / f"reducer_{job_id}").glob("*_submission.sh")).read_text()
    array_id = cell_rows[0]["JobID"].split("_")[0]
    assert f"--dependency=afterany:{array_id}" in submission


def test_glob_sweep_is_one_job_array_and_the_reducer_runs_after_the_last_cell(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    run = _run_sweep(sweep_dir, "toy=glob(*)")
    assert run.returncode == 0, run.stderr

    jobs = _cell_job_ids(sweep_dir)
    assert sorted(jobs) == [0, 1, 2, 3]
    array_ids = {job.split("_")[0] for job in jobs.values()}
    assert len(array_ids) == 1, f"expected one job array, got {array_ids}"
    rows = _sacct(list(jobs.values()))
    assert {row["JobID"]: row["State"] for row in rows} == {job: "COMPLETED" for job in jobs.values()}
    results = [json.loads((sweep_dir / str(i) / "result.json").read_text()) for i in sorted(jobs)]
    assert [r["toy"] for r in results] == ["alpha", "beta", "delta", "gamma"]  # glob options come sorted
    assert {r["array_job_id"] for r in results} == array_ids

    reducer_id, reduced = _reducer(sweep_dir)
    assert reduced["job_id"] == reducer_id
    assert reduced["cells"] == ["alpha", "beta", "delta", "gamma"]
    assert reduced["cwd"] == str(ROOT)  # reducer_workdir defaults to where the sweep was started
    _assert_reducer_started_after(sweep_dir, reducer_id, rows)


def test_a_failing_cell_ends_failed_the_others_complete_and_the_reducer_still_runs(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    run = _run_sweep(sweep_dir, "toy=alpha,beta", "fail_on=alpha")
    assert run.returncode != 0
    assert "toy cell alpha fails as asked" in run.stderr

    jobs = _cell_job_ids(sweep_dir)
    rows = _sacct([jobs[0], jobs[1]])
    assert {row["JobID"]: row["State"] for row in rows} == {jobs[0]: "FAILED", jobs[1]: "COMPLETED"}
    # the launcher waited for the later cell instead of stopping at the first failure
    assert (sweep_dir / "1" / "result.json").exists()

    reducer_id, reduced = _reducer(sweep_dir)
    assert reduced["cells"] == ["beta"]
    _assert_reducer_started_after(sweep_dir, reducer_id, rows)


def _interrupt_and_finish(sweep_dir: Path, interrupt: list[str], *overrides: str) -> subprocess.CompletedProcess[str]:
    """Run a one-cell sweep, run `interrupt` (with {job} filled in) once the cell has done 3 steps, wait for the end."""
    proc = subprocess.Popen(
        _app_command(sweep_dir, "toy=alpha", "steps=12", "step_s=0.4", *overrides),
        cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    job = None
    try:
        progress = sweep_dir / "0" / "progress.txt"
        deadline = time.monotonic() + 60
        while not (progress.exists() and int(progress.read_text() or 0) >= 3):
            assert proc.poll() is None and time.monotonic() < deadline, "the cell did not reach step 3"
            time.sleep(0.1)
        job = _cell_job_ids(sweep_dir)[0]
        subprocess.run([part.format(job=job) for part in interrupt], check=True, capture_output=True)
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        _stop_if_running(proc, job)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _assert_requeued_and_resumed(sweep_dir: Path) -> None:
    starts = (sweep_dir / "0" / "starts.log").read_text().splitlines()
    assert len(starts) == 2, starts
    assert starts[0] == "start at step 0 restart=0"
    resumed_at = int(re.fullmatch(r"start at step (\d+) restart=1", starts[1]).group(1))
    assert resumed_at >= 3, f"the requeued cell started over: {starts}"
    assert (sweep_dir / "0" / "progress.txt").read_text() == "12"

    job = _cell_job_ids(sweep_dir)[0]
    attempts = _sacct([job], attempts=True)
    assert [row["State"] for row in attempts] == ["REQUEUED", "COMPLETED"], attempts
    reducer_id, reduced = _reducer(sweep_dir)
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
    run = _run_sweep(sweep_dir, "toy=alpha", "hydra.launcher.reducer_dependency=afterbad")
    assert run.returncode != 0
    assert "reducer_dependency='afterbad'; expected 'afterany' or 'afterok'" in run.stderr
    assert not (sweep_dir / ".submitit").exists()
