"""W&B on a cluster: an unreachable service never fails a cell (it logs offline), and run ids are per cell."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import run_cli
from transfer.tracking import run_id

pytestmark = pytest.mark.slow   # two real cells, one of them waiting out the W&B init timeout
UNREACHABLE = {"WANDB_BASE_URL": "http://127.0.0.1:9", "WANDB_API_KEY": "x" * 40}   # discard port: refused at once


def _offline_ids(sweep: Path) -> list[str]:
    return sorted(re.fullmatch(r"offline-run-\d{8}_\d{6}-(\w+)", p.name).group(1)
                  for p in (sweep / "wandb").glob("offline-run-*"))


@pytest.fixture(scope="module")
def runs(tiny_checkpoints, tmp_path_factory):
    outputs = tmp_path_factory.mktemp("outputs")
    cell = ["model=qwen", f"model.checkpoint={tiny_checkpoints['qwen']}", "source_task=none", "experiment=test",
            "targets=[Counting]"]
    with pytest.MonkeyPatch.context() as env:   # run_cli passes os.environ on
        for key, value in UNREACHABLE.items():
            env.setenv(key, value)
        online = run_cli([*cell, "wandb.mode=online", "wandb.init_timeout=5"], outputs)
    again = run_cli([*cell, "overwrite=true"], outputs)   # offline (run_cli's default): the same cell once more
    return outputs / "test", online, again


def test_an_unreachable_service_falls_back_to_offline_and_the_cell_succeeds(runs) -> None:
    sweep, online, _ = runs
    assert online.returncode == 0, online.stderr[-3000:]
    assert "W&B online init failed" in online.stdout + online.stderr
    assert "logging offline instead" in online.stdout + online.stderr
    assert (sweep / "cells" / "qwen" / "none" / "seed=0" / "scores.parquet").exists()
    assert len(_offline_ids(sweep)) >= 1


def test_run_ids_are_deterministic_per_cell(runs) -> None:
    sweep, _, again = runs
    assert again.returncode == 0, again.stderr[-3000:]
    ids = _offline_ids(sweep)
    assert len(ids) == 2 and ids[0] == ids[1], ids     # the re-run resumed the same W&B run
    assert ids[0] == run_id("test", "qwen/none/seed0")
    assert run_id("test", "qwen/none/seed1") != ids[0] != run_id("other", "qwen/none/seed0")
