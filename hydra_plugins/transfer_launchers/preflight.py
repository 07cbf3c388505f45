"""Before the first cell of a sweep starts: the spec of every job is built, so one bad value anywhere in the grid
stops the sweep with one line instead of failing cells one by one; then the grid's subset is chosen and, with
`plan=true`, the plan is printed and written instead of running anything."""
from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger("transfer")


def check_jobs(launcher: Any, job_overrides: Sequence[Sequence[str]]) -> list:
    """Compose every job's config as the launcher will and build its CellSpec; exit 2 on the first bad value."""
    from transfer.spec import CellSpec, SpecError

    loader, specs = launcher.hydra_context.config_loader, []
    for overrides in job_overrides:
        try:
            specs.append(CellSpec.from_config(loader.load_sweep_config(launcher.config, list(overrides))))
        except SpecError as err:
            _stop(f"{err} (job: {' '.join(overrides)})")
    return specs


def prepare(launcher: Any, job_overrides: Sequence[Sequence[str]],
            describe: Callable[[list, list], list[str]] | None = None) -> tuple[list[Sequence[str]], list]:
    """(overrides, specs) of the jobs the grid runs. With plan=true: print the plan, write <sweep>/plan.csv and
    exit 0 before anything runs; `describe(overrides, specs)` of the jobs to run adds the launcher's lines."""
    from hydra_plugins.transfer_launchers import grid
    from transfer.spec import SpecError

    specs = check_jobs(launcher, job_overrides)
    try:
        chosen = grid.in_grid(specs)
        plan = grid.sweep_setting(specs, "plan")
    except SpecError as err:
        _stop(str(err))
    jobs = [o for o, keep in zip(job_overrides, chosen) if keep]
    kept = [s for s, keep in zip(specs, chosen) if keep]
    if plan:
        from transfer.plan import make_plan, show_plan

        show_plan(make_plan(specs, chosen, describe(jobs, kept) if describe else ()), specs[0].sweep_dir)
        raise SystemExit(0)
    if len(jobs) < len(specs):
        log.info("grid: running %d of %d cells (every none cell and a subset of the sources); the reducer predicts "
                 "the rest", len(jobs), len(specs))
    return jobs, kept


def _stop(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)
