"""Before the first cell of a sweep starts: the spec of every job is built, so one bad value anywhere in the grid
stops the sweep with one line instead of failing cells one by one."""
from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any


def check_jobs(launcher: Any, job_overrides: Sequence[Sequence[str]]) -> None:
    """Compose every job's config as the launcher will and build its CellSpec; exit 2 on the first bad value."""
    from transfer.spec import CellSpec, SpecError

    loader = launcher.hydra_context.config_loader
    for overrides in job_overrides:
        try:
            CellSpec.from_config(loader.load_sweep_config(launcher.config, list(overrides)))
        except SpecError as err:
            print(f"error: {err} (job: {' '.join(overrides)})", file=sys.stderr)
            raise SystemExit(2) from None
