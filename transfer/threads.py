"""The CPU threads of a cell's process."""
from __future__ import annotations

import os


def limit_threads(threads: int) -> None:
    """Run torch and OpenMP with `threads` threads.

    OpenMP reads OMP_NUM_THREADS once, when torch is first imported; `torch.set_num_threads` alone leaves an
    OpenMP team of the machine's core count that kept a second thread busy (about 50 % of a core) in a base stage,
    so two one-thread base stages side by side on 2 cores ran 5x slower (0.9 s a step, not 0.18). Call before
    importing torch.
    """
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)
