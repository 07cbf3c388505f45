"""The embedded default as a validation instrument: the 4-seed grid recovers the planted transfer structure.

Slow (the 4-seed grid): `make science` runs the grid (sweep `science`) and then this test, which reads the
reducer's summary.json. Run alone, it runs the grid itself first (finished cells are skipped). The targets that
docs/validation.md reports as missed are expected failures with the reason, so the run reports them (xfail, or
XPASS if a grid meets them) instead of failing by design.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT

SWEEP = "science"
FAMILIES = ("llava", "qwen", "idefics")
MISSED = {   # (family, target): why it is missed with the default base (docs/validation.md)
    ("llava", "base"): "llava's base answers 5 of 13 tasks above chance: its skills are bound to the pretraining "
                       "wording (docs/validation.md)",
    ("llava", "negative"): "the mark-height primitive is learned per task and does not transfer (docs/validation.md)",
    ("qwen", "negative"): "Relative_Depth -> Object_Localization is the top cell of its column, against its planted "
                          "sign (docs/validation.md)",
}

pytestmark = pytest.mark.slow


def _cases(target: str) -> list:
    return [pytest.param(f, marks=pytest.mark.xfail(reason=MISSED[f, target], strict=False))
            if (f, target) in MISSED else f for f in FAMILIES]


@pytest.fixture(scope="module")
def summary() -> dict:
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    subprocess.run([sys.executable, "-m", "transfer.run", "-m", f"model={','.join(FAMILIES)}", "source_task=glob(*)",
                    "seed=0,1,2,3", f"sweep={SWEEP}"], cwd=ROOT, env=env, check=True)
    return json.loads((ROOT / "outputs" / SWEEP / "reduce" / "summary.json").read_text())


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_has_four_seeds_and_a_numeric_summary(summary: dict, family: str) -> None:
    values = summary[family]
    assert values["n_seeds"] == 4 and values["off_diagonal_cells"] == 13 * 12
    for key in ("base_above_chance", "diag_significant", "planted_positive_mean", "planted_negative_mean",
                "unplanted_mean", "planted_positive_p", "planted_negative_p", "seed_spearman",
                "significant_positive_cells", "significant_negative_cells"):
        assert isinstance(values[key], (int, float)), key


@pytest.mark.parametrize("family", _cases("diagonal"))
def test_the_diagonal_learns(summary: dict, family: str) -> None:
    assert summary[family]["diag_significant"] >= 12


@pytest.mark.parametrize("family", _cases("positive"))
def test_planted_positive_pairs_stand_out(summary: dict, family: str) -> None:
    assert summary[family]["planted_positive_p"] < 0.01


@pytest.mark.parametrize("family", _cases("negative"))
def test_planted_negative_pairs_stand_out(summary: dict, family: str) -> None:
    assert summary[family]["planted_negative_p"] < 0.01


@pytest.mark.parametrize("family", _cases("seeds"))
def test_seeds_agree(summary: dict, family: str) -> None:
    assert summary[family]["seed_spearman"] >= 0.6


@pytest.mark.parametrize("family", _cases("base"))
def test_the_base_is_worth_measuring(summary: dict, family: str) -> None:
    assert summary[family]["base_above_chance"] >= 6


@pytest.mark.parametrize("family", _cases("negative_cells"))
def test_negative_transfer_shows(summary: dict, family: str) -> None:
    assert summary[family]["significant_negative_cells"] >= 3
