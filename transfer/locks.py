"""An exclusive file lock (flock), so concurrent processes (cells side by side, SLURM array tasks, two sweeps
started on one folder) build a shared cache or compute a cell once. The kernel releases a lock when its holder
dies, so a lock file left by a killed process is taken over at once, and two live processes never hold it
together. The time spent waiting is accounted as `lock_wait`; a wait is logged with `what` is waited for."""
from __future__ import annotations

import fcntl
import logging
from contextlib import contextmanager
from pathlib import Path

from transfer import timing

log = logging.getLogger("transfer")


@contextmanager
def file_lock(path: Path, what: str = ""):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        with timing.timed("lock_wait"):
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("waiting for another process to finish %s (lock %s)", what or path.stem, path)
                fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
