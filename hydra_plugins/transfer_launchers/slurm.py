"""`hydra/launcher=slurm`: a sweep as one SLURM job array per resource class, with a reducer job queued behind them.

Extends hydra-submitit-launcher's SlurmLauncher:
- resource classes: the jobs are grouped by their model's `model.resources` (GPUs, CPUs, memory, time limit;
  null = this launcher's own fields) and each class is submitted as its own job array with that class's sbatch
  fields, so one sweep can give a 3B model one GPU and a 32B model eight (Hydra cannot sweep launcher fields);
- as soon as every array is submitted, the reducer is submitted as its own job with
  `--dependency=<reducer_dependency>:<array 1>:<array 2>...` (afterany: it runs even if cells failed),
  so it does not depend on the blocking sweep command surviving;
- a cell whose task raises ends as SLURM state FAILED (the stock launcher reports COMPLETED);
- the grid's subset (`grid.*`) and `plan=true` as in the local launcher (preflight.prepare).
The sweep command still blocks until every cell has ended, then raises the first failure (Hydra semantics).
Preemption/time-out: submitit checkpoints on USR2 by re-queueing the same Hydra job, which resumes from its own files.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from omegaconf import OmegaConf

from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher

from . import preflight
from .reducer import submit_reducer

log = logging.getLogger(__name__)

# cell settings the reducer job shares (where it runs, who pays, how its shell is set up)
_SHARED_WITH_REDUCER = ("partition", "account", "qos", "constraint", "exclude", "setup", "additional_parameters")


def class_fields(resources: Any) -> dict[str, Any]:
    """The sbatch fields of a resource class (a ResourcesSpec): one process per GPU, at least one."""
    tasks = max(1, resources.gpus)
    return {"gpus_per_node": resources.gpus or None, "tasks_per_node": tasks,
            "cpus_per_task": math.ceil(resources.cpus / tasks), "mem_gb": resources.mem_gb,
            "timeout_min": resources.time_min}


def resource_classes(resources: Sequence[Any]) -> dict[Any, list[int]]:
    """Job indices per resource class, classes in order of first appearance (None: the launcher's fields)."""
    classes: dict[Any, list[int]] = {}
    for i, job in enumerate(resources):
        classes.setdefault(job, []).append(i)
    return classes


class TransferSlurmLauncher(SlurmLauncher):
    """SlurmLauncher with one job array per resource class, strict cell failures and a dependent reducer job."""

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
        if self.validate:   # the grid's subset; with plan=true the plan is printed and nothing is submitted
            job_overrides, specs = preflight.prepare(self, job_overrides, self._describe)
            resources = [spec.model.resources for spec in specs]
        else:
            resources = [self._resources(overrides) for overrides in job_overrides]
        assert self.config is not None
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        cells: list[tuple[int, _CellJob]] = []
        arrays = []
        for resources_class, members in resource_classes(resources).items():
            jobs = self._submit_array(resources_class, [(i, job_overrides[i]) for i in members], initial_job_idx)
            arrays.append(jobs[0].job_id.split("_")[0])   # "1234_0" -> "1234"; a single cell is a plain job "1234"
            cells += [(i, _CellJob(job, job_overrides[i])) for i, job in zip(members, jobs)]
        if self.reducer_command:
            self.submit_reducer(":".join([self.reducer_dependency, *arrays]))
        return [ret for _, cell in sorted(cells, key=lambda c: c[0]) for ret in cell.results()]

    def _submit_array(self, resources: Any, jobs: list[tuple[int, Sequence[str]]], initial_job_idx: int) -> list:
        """Submit one resource class's cells as one job array; return submitit's jobs."""
        import submitit

        params = {**self.params, **(class_fields(resources) if resources else {})}
        folder = params.pop("submitit_folder")
        init = {"slurm_max_num_timeout": params.pop("max_num_timeout")} if "max_num_timeout" in params else {}
        executor = submitit.AutoExecutor(cluster="slurm", folder=folder, **init)
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
        arguments = []
        for i, overrides in jobs:
            idx = initial_job_idx + i
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            arguments.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state()))
        submitted = executor.map_array(self, *zip(*arguments))
        log.info(f"Submitted {len(submitted)} cell(s) as SLURM job {submitted[0].job_id.split('_')[0]} "
                 f"({_class_text(params)})")
        return submitted

    def _resources(self, overrides: Sequence[str]) -> Any:
        """`model.resources` of a job's composed config (apps without a cell spec: validate=false)."""
        from transfer.spec import ResourcesSpec

        assert self.config is not None and self.hydra_context is not None
        config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        node = OmegaConf.select(config, "model.resources")
        return None if node is None else ResourcesSpec(**OmegaConf.to_container(node, resolve=True))

    def _describe(self, job_overrides: Sequence[Sequence[str]], specs: list) -> list[str]:
        """The plan's lines for this launcher: one job array per resource class, then the reducer job."""
        lines = []
        for resources, members in resource_classes([s.model.resources for s in specs]).items():
            params = {**self.params, **(class_fields(resources) if resources else {})}
            models = sorted({specs[i].model.name for i in members})
            lines.append(f"SLURM job array {len(lines) + 1}: {len(members)} cells of {', '.join(models)} "
                         f"({_class_text(params)})")
        if self.reducer_command:
            lines.append(f"SLURM reducer job after all {len(lines)} arrays ({self.reducer_dependency}): "
                         f"{self.reducer_command}")
        return lines

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


def _class_text(params: dict[str, Any]) -> str:
    gpus = params.get("gpus_per_node") or 0
    return (f"{gpus} GPU, {params.get('tasks_per_node') or 1} task(s) x {params.get('cpus_per_task')} CPUs, "
            f"{params.get('mem_gb')} GB, {params.get('timeout_min')} min")


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
