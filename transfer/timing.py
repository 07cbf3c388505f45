"""Wall-clock accounting by named phase (model compute, data, DeepSpeed init, I/O, W&B), for benchmarks."""
from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager

_totals: dict[str, float] = defaultdict(float)


@contextmanager
def timed(phase: str):
    start = time.perf_counter()
    try:
        yield
    finally:
        _totals[phase] += time.perf_counter() - start


def add(phase: str, seconds: float) -> None:
    _totals[phase] += seconds


def snapshot() -> dict[str, float]:
    """Seconds per phase accumulated in this process so far."""
    return dict(_totals)
