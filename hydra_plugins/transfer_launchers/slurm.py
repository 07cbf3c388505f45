"""`hydra/launcher=slurm`: a sweep as one SLURM job array, with a reducer job queued right behind it.

Extends hydra-submitit-launcher's SlurmLauncher in two ways:
- a cell whose task raises ends as SLURM state FAILED (the stock launcher reports COMPLETED);
- as soon as the array is submitted, the reducer is submitted as its own job with
  `--dependency=<reducer_dependency>:<array id>` (afterany: it runs even if cells failed),
  so it does not depend on the blocking sweep command surviving.
The sweep command still blocks until every cell has ended, then raises the first failure (Hydra semantics).
Preemption/time-out: submitit checkpoints on USR2 by re-queueing the same Hydra job, which resumes from its own files.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from hydra.core.utils import JobReturn, JobStatus

from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher

from . import preflight
from .reducer import submit_reducer

log = logging.getLogger(__name__)

# cell settings the reducer job shares (where it runs, who pays, how its shell is set up)
_SHARED_WITH_REDUCER = ("partition", "account", "qos", "constraint", "exclude", "setup", "additional_parameters")


class TransferSlurmLauncher(SlurmLauncher):
    """SlurmLauncher with strict cell failures and a reducer job that depends on the sweep's array."""

    def __init__(
        self,
        reducer_command: str | None = None,
        reducer_dependency: str = "afterany",
        reducer_workdir: str | None = None,
        reducer_timeout_min: int = 60,
        reducer_mem_gb: int = 4,
        validate: bool = True,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        self.validate = validate
        if reducer_dependency not in ("afterany", "afterok"):
            raise ValueError(f"reducer_dependency={reducer_dependency!r}; expected 'afterany' or 'afterok'")
        self.reducer_command = reducer_command
        self.reducer_dependency = reducer_dependency
        self.reducer_workdir = reducer_workdir
        self.reducer_timeout_min = reducer_timeout_min
        self.reducer_mem_gb = reducer_mem_gb

    def __call__(self, *args: Any, **kwargs: Any) -> JobReturn:
        """Run one cell on the compute node; re-raise its exception so the SLURM job ends FAILED."""
        ret = super().__call__(*args, **kwargs)
        if ret.status == JobStatus.FAILED:
            raise ret._return_value  # submitit logs the traceback and exits 1
        return ret

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        if self.validate:
            preflight.check_jobs(self, job_overrides)
        with _after_map_array(self._array_submitted):
            return super().launch(job_overrides, initial_job_idx)

    def _array_submitted(self, jobs: list[Any], overrides: Sequence[Sequence[str]]) -> list[_CellJob]:
        array_id = jobs[0].job_id.split("_")[0]  # "1234_0" -> "1234"; a single cell is a plain job "1234"
        log.info(f"Submitted {len(jobs)} cell(s) as SLURM job {array_id}")
        if self.reducer_command:
            self.submit_reducer(f"{self.reducer_dependency}:{array_id}")
        return [_CellJob(job, cell_overrides) for job, cell_overrides in zip(jobs, overrides)]

    def submit_reducer(self, dependency: str | None) -> str:
        """Queue `reducer_command` with the cells' partition/account/setup; return the job id."""
        assert self.config is not None and self.reducer_command
        shared = {key: self.params[key] for key in _SHARED_WITH_REDUCER if self.params.get(key)}
        return submit_reducer(
            str(self.config.hydra.sweep.dir),
            self.reducer_command,
            dependency,
            workdir=self.reducer_workdir,
            timeout_min=self.reducer_timeout_min,
            mem_gb=self.reducer_mem_gb,
            **shared,
        )


class _CellJob:
    """A submitted cell whose SLURM failure becomes a failed JobReturn, so the launcher waits for every cell."""

    def __init__(self, job: Any, overrides: Sequence[str]) -> None:
        self.job = job
        self.overrides = list(overrides)

    def results(self) -> list[JobReturn]:
        from submitit.core.utils import UncompletedJobError

        try:
            return self.job.results()
        except UncompletedJobError as error:
            log.error(f"Cell {' '.join(self.overrides)} failed (SLURM job {self.job.job_id}); "
                      f"log: {self.job.paths.stderr}")
            return [JobReturn(overrides=self.overrides, status=JobStatus.FAILED, _return_value=error)]


@contextlib.contextmanager
def _after_map_array(on_submitted: Callable[[list[Any], Sequence[Sequence[str]]], list[Any]]) -> Iterator[None]:
    """While active, `AutoExecutor.map_array` returns `on_submitted(jobs, per-cell overrides)` instead of `jobs`.

    SlurmLauncher.launch submits with `map_array(launcher, overrides, ...)` and then blocks on the jobs;
    this is the one point where the array id is known before the wait.
    """
    import submitit

    own = vars(submitit.AutoExecutor).get("map_array")  # None: inherited from submitit's Executor
    original = submitit.AutoExecutor.map_array

    def map_array(executor: Any, fn: Any, *iterables: Any) -> list[Any]:
        jobs = original(executor, fn, *iterables)
        return on_submitted(jobs, iterables[0]) if jobs else jobs

    submitit.AutoExecutor.map_array = map_array  # type: ignore[method-assign]
    try:
        yield
    finally:
        if own is None:
            del submitit.AutoExecutor.map_array
        else:
            submitit.AutoExecutor.map_array = own  # type: ignore[method-assign]
