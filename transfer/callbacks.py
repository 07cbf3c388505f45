"""Hydra callbacks: build the PGF matrix when a local multirun ends."""
from __future__ import annotations

import logging

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("transfer")


class ReduceAfterSweep(Callback):
    """Run the reducer in-process after a multirun on the local launcher (SLURM submits its own reducer job)."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        if "slurm" in str(config.hydra.launcher.get("_target_", "")).lower():
            return
        from transfer.reduce import reduce_sweep
        from transfer.spec import CellSpec

        spec = CellSpec.from_config(config)
        reduce_sweep(spec.sweep_dir, wandb_cfg=spec.wandb)
