"""The CPU threads of a cell's process."""
from __future__ import annotations

import os


def limit_threads(threads: int) -> None:
    """Run torch and OpenMP with `threads` threads.

    OpenMP reads OMP_NUM_THREADS once, when torch is first imported; `torch.set_num_threads` alone leaves an
    OpenMP team of the machine's core count, whose spare threads keep cores busy and slow down cells running side
    by side (docs/design.md). Call before importing torch.
    """
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)
