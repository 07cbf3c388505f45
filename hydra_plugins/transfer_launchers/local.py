"""The local launcher: Hydra's basic in-process launcher with a grid progress line (cells done / total, ETA)."""
from __future__ import annotations

import logging
import time
from typing import Sequence

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra.core.utils import JobReturn, JobStatus

log = logging.getLogger("transfer")


class LocalLauncher(BasicLauncher):
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        total, start, runs = len(job_overrides), time.perf_counter(), []
        for i, overrides in enumerate(job_overrides):
            runs += super().launch([overrides], initial_job_idx + i)
            done = i + 1
            elapsed = time.perf_counter() - start
            failed = sum(r.status == JobStatus.FAILED for r in runs)
            log.info("grid: %d/%d cells done%s, %.0fs elapsed, ETA %.0fs", done, total,
                     f" ({failed} failed)" if failed else "", elapsed, elapsed / done * (total - done))
        return runs
