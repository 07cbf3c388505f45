"""The embedded default as a validation instrument: the 4-seed grid recovers the planted transfer structure.

Slow (about 45 min on 2 cores): `make science` runs the grid (sweep `science`) and then this test, which reads
the reducer's summary.json. Run alone, it runs the grid itself first (finished cells are skipped).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SWEEP = "science"
FAMILIES = ("llava", "qwen", "idefics")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def summary() -> dict:
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    subprocess.run([sys.executable, "-m", "transfer.run", "-m", f"model={','.join(FAMILIES)}", "source_task=glob(*)",
                    "seed=0,1,2,3", f"sweep={SWEEP}"], cwd=ROOT, env=env, check=True)
    path = ROOT / "outputs" / SWEEP / "reduce" / "summary.json"
    return json.loads(path.read_text())


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_has_four_seeds_and_a_numeric_summary(summary: dict, family: str) -> None:
    values = summary[family]
    assert values["n_seeds"] == 4 and values["off_diagonal_cells"] == 13 * 12
    for key in ("base_above_chance", "diag_significant", "planted_positive_mean", "planted_negative_mean",
                "unplanted_mean", "planted_positive_p", "planted_negative_p", "seed_spearman",
                "significant_positive_cells", "significant_negative_cells"):
        assert isinstance(values[key], (int, float)), key


@pytest.mark.parametrize("family", FAMILIES)
def test_the_diagonal_learns(summary: dict, family: str) -> None:
    assert summary[family]["diag_significant"] >= 12


@pytest.mark.parametrize("family", FAMILIES)
def test_planted_pairs_stand_out(summary: dict, family: str) -> None:
    values = summary[family]
    assert values["planted_positive_p"] < 0.01 and values["planted_negative_p"] < 0.01


@pytest.mark.parametrize("family", FAMILIES)
def test_seeds_agree(summary: dict, family: str) -> None:
    assert summary[family]["seed_spearman"] >= 0.6


@pytest.mark.parametrize("family", FAMILIES)
def test_the_base_is_worth_measuring_and_negative_transfer_shows(summary: dict, family: str) -> None:
    values = summary[family]
    assert values["base_above_chance"] >= 6 and values["significant_negative_cells"] >= 3
