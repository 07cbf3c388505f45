"""Entry point: one Hydra job = one cell of the grid.

    python -m transfer.run -m model=llava,qwen,idefics source_task='glob(*)'   # the whole grid
    python -m transfer.run model=qwen source_task=Counting                     # one cell
"""
from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from transfer.cli import CONF_DIR, check_overrides, one_line_errors, quiet_libraries, setup_logging
from transfer.spec import CellSpec
from transfer.threads import limit_threads


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
@one_line_errors
def main(cfg: DictConfig) -> dict:
    spec = CellSpec.from_config(cfg)   # every bad value fails here, in one line
    if spec.plan:   # a single cell's plan (a multirun's launcher prints the grid's)
        from transfer.plan import make_plan, show_plan

        show_plan(make_plan([spec], [True]), spec.sweep_dir)
        return {"cell": spec.name, "status": "planned"}
    if spec.threads:
        limit_threads(spec.threads)   # before torch is imported, so that OpenMP takes the limit too
    from transfer.cell import run_cell  # heavy imports after the spec is checked

    return run_cell(spec)


if __name__ == "__main__":
    check_overrides(sys.argv[1:])
    quiet_libraries()
    setup_logging()
    main()
