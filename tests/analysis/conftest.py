"""Fixtures for the analysis tests: the paper's released PGF tables (docs/paper_pgf/)."""
from __future__ import annotations

import polars as pl
import pytest

from tests.helpers import PAPER_PGF


@pytest.fixture(scope="session")
def paper_pgf() -> pl.DataFrame:
    """The three released tables as one long frame."""
    files = sorted(PAPER_PGF.glob("pgf_qwen2.5vl-*-instruct.csv"))
    if len(files) != 3:
        raise FileNotFoundError(f"released PGF tables not found under {PAPER_PGF}")
    from transfer.analysis.tables import read_pgf_table

    return pl.concat([read_pgf_table(f) for f in files])
