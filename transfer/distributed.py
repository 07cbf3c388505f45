"""Which process of a cell this is: one process, torchrun, or several SLURM tasks (one per GPU).

`setup_env()` exports what torch.distributed's env:// rendezvous (and so DeepSpeed and the HF Trainer) reads:
RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT.

- torchrun (or any launcher that set RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT): kept as they are;
- a SLURM job step with several tasks (`hydra.launcher.tasks_per_node=8`): taken from SLURM_PROCID,
  SLURM_LOCALID, SLURM_NTASKS and the job's first node; the port is derived from the job id so every task agrees;
- one process: rank 0 of 1 on 127.0.0.1 with a free port, so cells running side by side on one machine
  (a job array on one node, parallel test runs) never fight over a fixed port.
"""
from __future__ import annotations

import os
import random
import socket
from dataclasses import dataclass
from typing import Literal

LAUNCHER_KEYS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
PORT_RANGE = (20000, 60000)


@dataclass(frozen=True)
class DistEnv:
    rank: int
    local_rank: int
    world_size: int
    local_world_size: int
    master_addr: str
    master_port: int
    source: Literal["launcher", "slurm", "single"]


def free_port() -> int:
    """A TCP port that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def slurm_job_port(job_id: str) -> int:
    """The rendezvous port of a SLURM job: the same in every task of the job, spread across jobs."""
    return random.Random(job_id).randint(*PORT_RANGE)


def _slurm_tasks() -> int:
    return int(os.environ.get("SLURM_NTASKS", "1")) if "SLURM_PROCID" in os.environ else 1


def _detect(port: int | None) -> DistEnv:
    env = os.environ
    if all(key in env for key in LAUNCHER_KEYS):
        world = int(env["WORLD_SIZE"])
        return DistEnv(int(env["RANK"]), int(env.get("LOCAL_RANK", env["RANK"])), world,
                       int(env.get("LOCAL_WORLD_SIZE", world)), env["MASTER_ADDR"], int(env["MASTER_PORT"]), "launcher")
    if _slurm_tasks() > 1:
        from submitit.slurm.slurm import SlurmJobEnvironment  # reads SLURM_*; also outside submitit (plain srun)

        job = SlurmJobEnvironment()
        return DistEnv(job.global_rank, job.local_rank, job.num_tasks, job.num_tasks // job.num_nodes,
                       job.hostnames[0], int(env.get("MASTER_PORT") or slurm_job_port(job.job_id)), "slurm")
    return DistEnv(0, 0, 1, 1, "127.0.0.1", int(env.get("MASTER_PORT") or port or free_port()), "single")


def setup_env(port: int | None = None) -> DistEnv:
    """Detect this process's place in the cell and export it for env:// (`port`: a fixed single-process port)."""
    dist = _detect(port)
    os.environ.update({"RANK": str(dist.rank), "LOCAL_RANK": str(dist.local_rank), "WORLD_SIZE": str(dist.world_size),
                       "LOCAL_WORLD_SIZE": str(dist.local_world_size), "MASTER_ADDR": dist.master_addr,
                       "MASTER_PORT": str(dist.master_port)})
    return dist


def rank() -> int:
    """Global rank of this process (0 outside a multi-process cell)."""
    if "RANK" in os.environ:
        return int(os.environ["RANK"])
    return int(os.environ.get("SLURM_PROCID", "0")) if _slurm_tasks() > 1 else 0


def world_size() -> int:
    if "WORLD_SIZE" in os.environ:
        return int(os.environ["WORLD_SIZE"])
    return _slurm_tasks()


def is_main() -> bool:
    """True on the process that writes records, checkpoints' side files and W&B."""
    return rank() == 0


def barrier() -> None:
    """Wait for every process of the cell (a no-op with one process or before the process group exists)."""
    import torch.distributed as torch_dist

    if torch_dist.is_available() and torch_dist.is_initialized() and torch_dist.get_world_size() > 1:
        torch_dist.barrier()
