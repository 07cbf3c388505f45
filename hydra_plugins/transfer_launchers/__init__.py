"""Project launchers for Hydra (`hydra/launcher=local` and `slurm`); `hydra_plugins` stays a namespace package."""

from .reducer import submit_reducer
from .slurm import TransferSlurmLauncher

__all__ = ["TransferSlurmLauncher", "submit_reducer"]
