"""The local launcher: cells on this machine, one after another or `jobs` at a time, with a grid progress line.

`jobs: 1` is Hydra's basic in-process launcher. `jobs: N` runs N cells side by side in N worker processes
(spawned once, each reused for many cells), each with `cores // N` torch threads: a tiny model's forward/backward
does not use two threads well, so on 2 cores two one-thread cells finish a grid sooner than one two-thread cell at
a time (bench/README.md). `jobs: auto` is 1 where a GPU is visible (cells would share it) and otherwise 2 on >= 2 cores.
Cells of different models are handed out in turn, so the models' base models (pretrained once per model, under a
file lock) are pretrained side by side; while a model's first cell runs (it may be pretraining that base model),
the model's other cells wait in the queue and another model's cells go first, so no worker sits on the lock while
there is other work. Cells never share files: the task suite is also built under a lock, and every cell has its own
folder and DeepSpeed port.

A cell that raises is recorded as failed (its folder holds FAILED.json) and the other cells go on. When cells failed,
the launcher ends the multirun itself once every cell has run: the multirun-end callbacks (the reducer, which names
the failed cells as holes) run on what finished, and the sweep exits 1 with one line naming the failed cells.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import itertools
import logging
import multiprocessing
import os
import signal
import sys
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import cloudpickle
from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from omegaconf import open_dict

from transfer import faults
from transfer.cli import check_jobs, has_cuda, quiet_libraries
from transfer.threads import limit_threads

from . import preflight

log = logging.getLogger("transfer")


class LocalLauncher(BasicLauncher):
    """Hydra's basic launcher with a grid progress line and `jobs` cells at a time."""

    def __init__(self, jobs: int | str = "auto", validate: bool = True) -> None:
        super().__init__()
        check_jobs(jobs)
        self.jobs = auto_jobs() if jobs == "auto" else jobs
        self.validate = validate

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        if self.validate:   # the grid's subset; with plan=true the plan is printed and nothing runs
            job_overrides, _ = preflight.prepare(self, job_overrides, self._describe)
        grid = GridProgress(len(job_overrides), min(self.jobs, len(job_overrides)))
        if self.jobs == 1 or len(job_overrides) == 1:
            runs = []
            for i, overrides in enumerate(job_overrides):
                runs += super().launch([overrides], initial_job_idx + i)
                grid.cell_done(runs[-1])
                faults.pause("between_cells")
        else:
            runs = self._launch_parallel(job_overrides, initial_job_idx, grid)
        failed = [run for run in runs if run.status == JobStatus.FAILED]
        if failed:   # Hydra's sweeper would stop at the first failed cell's exception, before the reducer.
            # Hydra reports a callback's exception as a warning (e.g. no cell finished: nothing to reduce); it is
            # logged, so that the summary is the one line on stderr.
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self.hydra_context.callbacks.on_multirun_end(config=self.config)
            for warning in caught:
                log.warning("%s", warning.message)
            print(f"error: {failure_summary(failed, len(runs))}", file=sys.stderr)
            raise SystemExit(1)
        return runs

    def _describe(self, job_overrides: Sequence[Sequence[str]], specs: list) -> list[str]:
        """The plan's line for this launcher: where and how many cells at a time."""
        workers = min(self.jobs, len(job_overrides)) or 1
        return [f"local launcher: {len(job_overrides)} cells on this machine, {workers} at a time (the wall time is "
                f"about the cell time / {workers})"]

    def _launch_parallel(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int,
                         grid: GridProgress) -> list[JobReturn]:
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        workers = min(self.jobs, len(job_overrides))
        threads = max(1, cores() // workers)
        log.info("launching %d cells, %d at a time (%d torch thread%s each)", len(job_overrides), workers, threads,
                 "" if threads == 1 else "s")
        state = Singleton.get_state()
        runs: dict[int, JobReturn] = {}
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(threads,))
        try:
            dispatch, pending = Dispatch(job_overrides), {}   # pending: future -> job index

            def submit(i: int) -> None:
                idx, overrides = initial_job_idx + i, list(job_overrides[i])
                log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
                payload = cloudpickle.dumps((idx, overrides, self.hydra_context, self.config, self.task_function,
                                             state))
                pending[pool.submit(_run_cell, payload)] = i

            while dispatch.queue or pending:
                while dispatch.queue and len(pending) < workers:
                    submit(dispatch.next())
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    i = pending.pop(future)
                    runs[i] = cloudpickle.loads(future.result())   # a cell's exception is in its JobReturn
                    dispatch.finished(i)
                    grid.cell_done(runs[i])
        finally:
            pool.shutdown(wait=True, cancel_futures=True)    # running cells finish; queued ones are dropped
        return [runs[i] for i in range(len(job_overrides))]


def cores() -> int:
    """CPU cores this process may run on (its affinity: a container's or a SLURM allocation's share)."""
    return len(os.sched_getaffinity(0))


def auto_jobs() -> int:
    """Cells at once for `jobs: auto`: 1 with a GPU, else 2 when there are at least 2 cores."""
    return 1 if has_cuda() else min(2, cores())


def model_of(overrides: Sequence[str]) -> str:
    """The job's `model=` value ('' when the sweep does not set it)."""
    return next((o.split("=", 1)[1] for o in overrides if o.startswith("model=")), "")


def models_in_turn(job_overrides: Sequence[Sequence[str]]) -> list[int]:
    """Job indices reordered round-robin over their `model=` value (the sweep's order within each model)."""
    by_model: dict[str, list[int]] = {}
    for i, overrides in enumerate(job_overrides):
        by_model.setdefault(model_of(overrides), []).append(i)
    return [i for turn in itertools.zip_longest(*by_model.values()) for i in turn if i is not None]


class Dispatch:
    """The order cells start in: models in turn, but a model's cells wait while its first cell runs (that cell
    may be pretraining the model's base model under a file lock) as long as another model's cell can go instead."""

    def __init__(self, job_overrides: Sequence[Sequence[str]]) -> None:
        self.models = [model_of(o) for o in job_overrides]
        self.queue = models_in_turn(job_overrides)
        self.first: dict[str, int] = {}    # model -> its first started job
        self.building: set[str] = set()    # models whose first job is still running

    def next(self) -> int:
        """Take the next job to start off the queue."""
        i = next((j for j in self.queue if self.models[j] not in self.building), self.queue[0])
        self.queue.remove(i)
        if self.models[i] not in self.first:
            self.first[self.models[i]] = i
            self.building.add(self.models[i])
        return i

    def finished(self, i: int) -> None:
        if self.first.get(self.models[i]) == i:
            self.building.discard(self.models[i])


class CellFailed(RuntimeError):
    """A failed cell's error as one line, as a worker sends it back (the original exception may not pickle)."""


def error_line(err: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    if isinstance(err, CellFailed):
        return str(err)
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def failure_summary(failed: Sequence[JobReturn], total: int, shown: int = 3) -> str:
    """One line for a sweep whose cells failed: how many, the first few with their errors, how to recover."""
    named = "; ".join(f"{' '.join(filter_overrides(run.overrides))}: {error_line(run._return_value)}"
                      for run in failed[:shown])
    more = f"; and {len(failed) - shown} more" if len(failed) > shown else ""
    return (f"{len(failed)} of {total} cells failed ({named}{more}); each failed cell's folder holds FAILED.json, "
            "and a re-run of the sweep computes them again and skips the finished ones")


class GridProgress:
    """Logs 'grid: k/n cells done, elapsed, ETA' after each cell, and a line for each failed cell.

    The ETA is the mean wall time of the finished cells that computed something and did not pretrain a base model,
    times the cells left, over the cells at a time. Until such a cell has finished it says what it waits for: the
    base models' pretraining (a finished cell pretrained one), or a first computed cell."""

    def __init__(self, total: int, workers: int = 1, clock=time.perf_counter) -> None:
        self.total, self.workers, self.done, self.failed, self.pretrained = total, workers, 0, 0, False
        self.clock = clock
        self.start, self.seconds = clock(), []

    def cell_done(self, run: JobReturn) -> str:
        """Count a finished cell (computed, skipped or failed); logs and returns the grid line."""
        self.done += 1
        if run.status == JobStatus.FAILED:
            self.failed += 1
            log.error("cell failed: %s: %s", " ".join(filter_overrides(run.overrides)), error_line(run._return_value))
        info = run.return_value if run.status == JobStatus.COMPLETED and isinstance(run.return_value, dict) else {}
        if info.get("pretrain_seconds"):
            self.pretrained = True
        elif info.get("status") == "done":
            self.seconds.append(info["seconds"])
        line = (f"grid: {self.done}/{self.total} cells done{f' ({self.failed} failed)' if self.failed else ''}, "
                f"{self.clock() - self.start:.0f}s elapsed, {self.eta()}")
        log.info("%s", line)
        return line

    def eta(self) -> str:
        left = self.total - self.done
        if not left:
            return "ETA 0s"
        if self.seconds:
            return f"ETA {sum(self.seconds) / len(self.seconds) * left / min(self.workers, left):.0f}s"
        if self.pretrained:
            return "ETA when the base models are pretrained"
        return "ETA once a cell has been computed"


def _init_worker(threads: int) -> None:
    die_with_parent()
    os.environ["TRANSFER_PLAIN_PROGRESS"] = "1"   # progress bars of side-by-side cells would overwrite each other
    limit_threads(threads)
    quiet_libraries()   # as in the sweep's own process


def die_with_parent() -> None:
    """Have the kernel kill this worker when the sweep's process dies (Linux), so no cell goes on writing after a
    kill -9 of the sweep: its half-done cell is not finished and the next run computes it again."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
        if os.getppid() == 1:   # the parent died before the call
            os.kill(os.getpid(), signal.SIGKILL)


def _run_cell(payload: bytes) -> bytes:
    """One cell in a worker process: restore Hydra's global state, run the job as the basic launcher does, and
    return its JobReturn cloudpickled (its config holds Hydra dataclasses that plain pickle refuses), a failed
    cell's exception as one line."""
    idx, overrides, hydra_context, config, task_function, state = cloudpickle.loads(payload)
    setup_globals()
    Singleton.set_state(state)
    sweep_config = hydra_context.config_loader.load_sweep_config(config, overrides)
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = idx
        sweep_config.hydra.job.num = idx
    HydraConfig.instance().set_config(sweep_config)
    run = run_job(hydra_context=hydra_context, task_function=task_function, config=sweep_config,
                  job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    if run.status == JobStatus.FAILED:
        run.return_value = CellFailed(error_line(run._return_value))
    return cloudpickle.dumps(run)
