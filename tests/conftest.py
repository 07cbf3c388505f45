"""Fixtures shared by the tests (helpers are in tests/helpers.py): tiny models of each family saved to disk."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DS_ACCELERATOR", "cpu")

from tests.helpers import CORPUS, FAMILIES, arch  # noqa: E402


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> dict[str, str]:
    from transfer.embedded.tiny import build_tiny

    root = tmp_path_factory.mktemp("tiny")
    return {f: str(build_tiny(f, arch(f), CORPUS, 0, root / f)) for f in FAMILIES}
