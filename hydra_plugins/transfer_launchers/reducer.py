"""Queue a sweep's reducer as its own SLURM job, optionally after another job (the sweep's array)."""

from __future__ import annotations

import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

REDUCER_JOB_FILE = "reducer_job.txt"


def reducer_argv(command: str | Sequence[str]) -> list[str]:
    """Split a reducer command; a leading `python`/`python3` becomes this interpreter (the job's venv)."""
    argv = shlex.split(command) if isinstance(command, str) else [str(part) for part in command]
    if not argv:
        raise ValueError(f"reducer command is empty: {command!r}; expected e.g. 'python -m transfer.reduce sweep=NAME'")
    if argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    return argv


def submit_reducer(
    sweep_dir: str | Path,
    command: str | Sequence[str],
    dependency: str | None = None,
    *,
    workdir: str | Path | None = None,
    timeout_min: int = 60,
    mem_gb: int = 4,
    cpus_per_task: int = 1,
    **slurm_params: Any,
) -> str:
    """Submit `command` as a SLURM job run from `workdir`; return its job id.

    `dependency` is an sbatch dependency such as "afterany:1234" (None: start at once).
    `slurm_params` are submitit's slurm parameters without the `slurm_` prefix
    (partition, account, qos, setup, additional_parameters, ...).
    Logs go to <sweep_dir>/.submitit/reducer_<id>/; the id is also written to <sweep_dir>/reducer_job.txt.
    """
    import submitit  # lazy: Hydra imports every hydra_plugins module at start-up

    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    argv = reducer_argv(command)
    executor = submitit.AutoExecutor(folder=sweep_dir / ".submitit" / "reducer_%j", cluster="slurm")
    params = {f"slurm_{key}": value for key, value in slurm_params.items()}
    if dependency is not None:
        params["slurm_dependency"] = dependency
    executor.update_parameters(
        name="reduce", timeout_min=timeout_min, mem_gb=mem_gb, cpus_per_task=cpus_per_task, **params
    )
    job = executor.submit(submitit.helpers.CommandFunction(argv, cwd=workdir))
    (sweep_dir / REDUCER_JOB_FILE).write_text(f"{job.job_id}\n")
    log.info(f"Reducer: SLURM job {job.job_id} (dependency {dependency}) will run: {shlex.join(argv)}")
    return job.job_id
