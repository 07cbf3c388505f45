"""The multirun `python -m transfer.select` hands to `transfer.run`, expanded into jobs as Hydra's basic sweeper does
(hydra.sweeper.params first, then the command line) and composed from the real conf/: the cells keep the source
sweep's settings, and a SLURM launcher's reducer job is off. No SLURM needed."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import CONF, compose
from transfer.select import cell_command
from transfer.spec import SelectSpec

SLURM, LOCAL = "hydra_plugins.transfer_launchers.slurm.TransferSlurmLauncher", \
    "hydra_plugins.transfer_launchers.local.LocalLauncher"


def _arms(tmp_path: Path) -> Path:
    arms = tmp_path / "arms.json"
    arms.write_text(json.dumps([{"label": "mix-base", "tasks": [], "weights": [], "examples": 8},
                                {"label": "mix-a", "tasks": ["Counting"], "weights": [1.0], "examples": 8}]))
    return arms


def _jobs(args: list[str]) -> list[list[str]]:
    """Every job's overrides of the multirun `transfer.run <args>`, as Hydra's BasicSweeper makes them."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    assert args[0] == "-m"
    line = args[1:]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
        fixed = [a for a, o in zip(line, parser.parse_overrides(line)) if not o.is_sweep_override()]
        params = hydra_compose(config_name="config", overrides=fixed, return_hydra_config=True).hydra.sweeper.params
        (jobs,) = BasicSweeper.split_arguments(parser.parse_overrides(
            [f"{k}={v}" for k, v in (params or {}).items()] + line), None)
    return jobs


def _command(tmp_path: Path, *overrides: str) -> tuple[list[str], list[list[str]]]:
    listed = "overrides=[" + ",".join(f"'{o}'" for o in overrides) + "]"
    spec = SelectSpec.from_config(compose("model=qwen2.5vl-7b", "seeds=[0,1,2]", listed, config_name="select"))
    args = cell_command(spec, _arms(tmp_path), 2, "qwen2.5vl-7b")
    return args, _jobs(args)


def test_the_real_path_cells_train_as_the_paper_sweep_and_queue_no_reducer_job(tmp_path) -> None:
    args, jobs = _command(tmp_path, "experiment=paper", "data.root=/data/BLINK")
    assert "hydra.launcher.reducer_command=null" in args
    assert len(jobs) == 2 * 3                                                # mixtures x seeds, nothing more
    cells = [compose(*job) for job in jobs]
    assert {(c.mix.arm, c.seed) for c in cells} == {(a, s) for a in (0, 1) for s in (0, 1, 2)}
    for cfg in cells:
        assert cfg.hydra.launcher._target_ == SLURM and cfg.hydra.launcher.reducer_command is None
        assert (cfg.train.steps, cfg.train.global_batch, cfg.train.lr) == (200, 16, 1.0e-4)   # experiment=paper's
        assert cfg.data.root == "/data/BLINK" and cfg.model.name == "qwen2.5vl-7b" and cfg.model.resources.gpus == 2
        assert cfg.source_task.name == "none" and cfg.mix.arms.endswith("arms.json") and cfg.sweep == "selection"
        assert "reduce_after_sweep" not in cfg.hydra.callbacks


@pytest.mark.parametrize("overrides", [["hydra/launcher=slurm_gpu1", "data=blink", "data.root=/data/BLINK"],
                                       ["hydra/launcher=slurm", "experiment=paper", "data.root=/data/BLINK"]])
def test_any_slurm_launcher_gets_its_reducer_job_turned_off(tmp_path, overrides) -> None:
    _, jobs = _command(tmp_path, *overrides)
    launcher = compose(*jobs[0]).hydra.launcher
    assert launcher._target_ == SLURM and launcher.reducer_command is None


def test_overrides_that_do_not_compose_are_one_line_errors(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"^overrides=\['data.root=/data/BLINK'\]: the cells' config does not "
                                         r"compose: Could not override 'data.root'.$"):
        _command(tmp_path, "data.root=/data/BLINK")


def test_the_local_launcher_gets_no_launcher_override(tmp_path) -> None:
    args, jobs = _command(tmp_path, "experiment=test")
    assert not any(a.startswith("hydra.launcher.") for a in args)
    cfg = compose(*jobs[0])
    assert cfg.hydra.launcher._target_ == LOCAL and cfg.train.steps == compose("experiment=test").train.steps
