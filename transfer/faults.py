"""Named fault points for the fault-injection tests.

- With TRANSFER_FAULT=<point> set, the process kills itself (SIGKILL: no clean-up, as a preemption without warning
  or an OOM kill) when it reaches that point.
- With TRANSFER_PAUSE=<point>:<file> set, the first arrival at the point writes <file> and waits until the test
  has removed it, so that the test can change the world at that moment. The pause point is `between_cells` (the
  local launcher, one cell at a time): e.g. a test deletes a cached base model while the sweep runs.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

POINTS = ("model_load", "mid_training", "mid_eval", "between_records")   # the kill points (cells)


def point(name: str) -> None:
    if os.environ.get("TRANSFER_FAULT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def pause(name: str) -> None:
    where, _, file = os.environ.get("TRANSFER_PAUSE", "").partition(":")
    if where != name or not file:
        return
    os.environ.pop("TRANSFER_PAUSE")   # the first arrival only
    flag = Path(file)
    flag.write_text(f"{os.getpid()} at {name}\n")
    while flag.exists():
        time.sleep(0.05)
