"""The embedded default as a validation instrument: the 4-seed grid recovers the planted transfer structure.

Slow (the 4-seed grid): `make science` runs the grid (sweep `science`) and then this test, which reads the
reducer's summary.json. Run alone, it runs the grid itself first (finished cells are skipped). The targets that
docs/validation.md reports as missed are strict expected failures with the reason (a grid that meets one fails
the run: the docs need updating). So the run reports the missed targets instead of failing by design.
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
MISSED = {   # (family, target): missed by the init-seed-0 4-seed grid, as docs/validation.md reports (strict xfail)
    ("llava", "base"): "llava's base model is above chance on 5 of 13 tasks (docs/validation.md, Missed, and why)",
    ("llava", "negative"): "planted_negative_p 0.068: the mark-height primitive is learned per task and does not "
                           "transfer (docs/validation.md, Missed, and why)",
    ("qwen", "base"): "qwen's base model is above chance on 4 of 13 tasks since its image positions were fixed "
                      "(docs/validation.md, Qwen's image positions)",
    ("qwen", "diagonal"): "qwen's diagonal is significant on 10 of 13 tasks since its image positions were fixed "
                          "(docs/validation.md, Qwen's image positions)",
    ("qwen", "negative"): "planted_negative_p 0.75: Relative_Depth -> Object_Localization goes against its planted "
                          "sign (docs/validation.md, Missed, and why)",
}

pytestmark = pytest.mark.slow


def _cases(target: str) -> list:
    """The families for one target, each missed one an expected failure with its reason."""
    cases = []
    for family in FAMILIES:
        if (family, target) in MISSED:
            cases.append(pytest.param(family, marks=pytest.mark.xfail(reason=MISSED[family, target], strict=True)))
        else:
            cases.append(family)
    return cases


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
