"""Named fault points for the fault-injection tests: with TRANSFER_FAULT=<point> set, the process kills itself
(SIGKILL: no clean-up, as a preemption without warning or an OOM kill) when it reaches that point."""
from __future__ import annotations

import os
import signal

POINTS = ("model_load", "mid_training", "mid_eval", "between_records")


def point(name: str) -> None:
    if os.environ.get("TRANSFER_FAULT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
