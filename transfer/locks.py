"""An exclusive file lock, so concurrent cells (SLURM array tasks) build shared caches once; the time spent
waiting for it is accounted as `lock_wait`."""
from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path

from transfer import timing


@contextmanager
def file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        with timing.timed("lock_wait"):
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
