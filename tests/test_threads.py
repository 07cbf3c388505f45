"""A cell's thread limit is set before torch is imported, so that OpenMP takes it too (transfer/threads.py)."""
import os
import subprocess
import sys


def _run(code: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_limit_threads_sets_openmp_and_torch() -> None:
    out = _run("from transfer.threads import limit_threads; limit_threads(1); import os, torch; "
               "print(os.environ['OMP_NUM_THREADS'], os.environ['MKL_NUM_THREADS'], torch.get_num_threads())")
    assert out == "1 1 1"


def test_entry_point_imports_torch_only_after_the_limit() -> None:
    """transfer.run calls limit_threads before its heavy imports: importing the entry point must not load torch."""
    assert _run("import sys, transfer.run; print('torch' in sys.modules)") == "False"
