"""Progress display: a tqdm bar on a terminal, a few plain log lines otherwise (quiet in CI logs).

TRANSFER_PLAIN_PROGRESS=1 asks for the log lines on a terminal too (cells running side by side).
"""
from __future__ import annotations

import logging
import os
import sys
import time

from tqdm import tqdm

log = logging.getLogger("transfer")


class Progress:
    """Counts work done out of a total; shows a bar on a TTY, else logs every `every` fraction with an ETA."""

    def __init__(self, total: int, desc: str, unit: str = "it", every: float = 0.25):
        self.total, self.desc, self.unit, self.every = total, desc, unit, every
        self.done, self.start, self._next_log = 0, time.perf_counter(), every
        self.bar = tqdm(total=total, desc=desc, unit=unit, leave=False) if _bars() else None

    def eta_seconds(self) -> float:
        elapsed = time.perf_counter() - self.start
        return elapsed / self.done * (self.total - self.done) if self.done else float("nan")

    def update(self, n: int = 1, **postfix) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)
        elif self.total and self.done / self.total >= self._next_log - 1e-9:
            extra = " ".join(f"{k}={v}" for k, v in postfix.items())
            log.info("%s: %d/%d %s, ETA %.0fs %s", self.desc, self.done, self.total, self.unit,
                     self.eta_seconds(), extra)
            self._next_log += self.every

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _bars() -> bool:
    return sys.stderr.isatty() and os.environ.get("TRANSFER_PLAIN_PROGRESS") != "1"
