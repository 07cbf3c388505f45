"""Fixtures for the analysis tests: the released paper tables (skipped when shared/ is absent)."""
from __future__ import annotations

import polars as pl
import pytest
from analysis_helpers import PAPER_PGF


@pytest.fixture(scope="session")
def paper_pgf() -> pl.DataFrame:
    """The three released tables as one long frame (skips when shared/ is not beside the repository)."""
    files = sorted(PAPER_PGF.glob("pgf_qwen2.5vl-*-instruct.csv"))
    if len(files) != 3:
        pytest.skip(f"released PGF tables not found under {PAPER_PGF.resolve()} (shared/ must sit beside the repo)")
    from transfer.analysis.tables import read_pgf_table

    return pl.concat([read_pgf_table(f) for f in files])
