"""A cell's thread limit reaches OpenMP, not only torch's own pool (transfer/threads.py)."""
import os
import subprocess
import sys

import pytest

WORK = """
import os
{limit}
x = torch.randn(64, 512, requires_grad=True)
w = torch.randn(512, 512, requires_grad=True)
for _ in range(20):
    (torch.nn.functional.gelu(x @ w).softmax(-1).sum()).backward()
print(torch.get_num_threads(), len(os.listdir("/proc/self/task")))
"""


def _threads_after_work(limit: str) -> tuple[int, int]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", WORK.format(limit=limit)], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    return int(out[0]), int(out[1])


@pytest.mark.skipif(not os.path.isdir("/proc/self/task") or (os.cpu_count() or 1) < 2, reason="needs Linux, 2+ cores")
def test_one_thread_means_one_os_thread_where_torch_alone_leaves_an_openmp_team() -> None:
    assert _threads_after_work("from transfer.threads import limit_threads; limit_threads(1); import torch") == (1, 1)
    torch_threads, os_threads = _threads_after_work("import torch; torch.set_num_threads(1)")
    assert torch_threads == 1 and os_threads > 1   # the problem limit_threads exists for
