"""transfer.distributed: one process, torchrun, or the tasks of a SLURM job step -> the env:// rendezvous."""
from __future__ import annotations

import os

import pytest

from transfer import distributed

KEYS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture
def env(monkeypatch):
    """A clean environment: no launcher or SLURM variables; what setup_env exported is removed afterwards."""
    for key in [*KEYS, *(k for k in os.environ if k.startswith("SLURM_"))]:
        monkeypatch.delenv(key, raising=False)
    yield monkeypatch
    for key in KEYS:   # later tests (and their subprocesses) must not inherit a rendezvous
        os.environ.pop(key, None)


def test_one_process_gets_rank_0_of_1_and_a_free_port(env) -> None:
    first = distributed.setup_env()
    assert (first.rank, first.world_size, first.master_addr, first.source) == (0, 1, "127.0.0.1", "single")
    assert os.environ["RANK"] == "0" and os.environ["WORLD_SIZE"] == "1"
    assert os.environ["MASTER_PORT"] == str(first.master_port) != "29511"
    env.delenv("MASTER_PORT")
    assert distributed.setup_env(port=31234).master_port == 31234
    assert distributed.is_main() and distributed.world_size() == 1
    distributed.barrier()   # no process group: a no-op


def test_torchrun_variables_are_kept(env) -> None:
    for key, value in {"RANK": "5", "LOCAL_RANK": "1", "WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "4",
                       "MASTER_ADDR": "node7", "MASTER_PORT": "29400"}.items():
        env.setenv(key, value)
    dist = distributed.setup_env(port=1111)
    assert (dist.rank, dist.local_rank, dist.world_size, dist.master_addr, dist.master_port, dist.source) == (
        5, 1, 8, "node7", 29400, "launcher")
    assert not distributed.is_main()


def test_slurm_tasks_become_ranks_with_one_rendezvous_per_job(env) -> None:
    slurm = {"SLURM_JOB_ID": "4242", "SLURM_NTASKS": "16", "SLURM_JOB_NUM_NODES": "2", "SLURM_NNODES": "2",
             "SLURM_NODEID": "1", "SLURM_PROCID": "11", "SLURM_LOCALID": "3", "SLURM_JOB_NODELIST": "gpu[07-08]"}
    for key, value in slurm.items():
        env.setenv(key, value)
    assert distributed.rank() == 11 and distributed.world_size() == 16   # before setup_env too
    dist = distributed.setup_env()
    assert (dist.rank, dist.local_rank, dist.world_size, dist.local_world_size, dist.master_addr, dist.source) == (
        11, 3, 16, 8, "gpu07", "slurm")
    assert dist.master_port == distributed.slurm_job_port("4242")   # every task of the job computes the same
    assert os.environ["LOCAL_RANK"] == "3" and os.environ["MASTER_ADDR"] == "gpu07"
