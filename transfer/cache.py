"""Shared caches under `paths.cache`: folders keyed by a hash of their parameters, each built once under a
file lock and appearing atomically (generated data, pretrained tiny models, encoded questions)."""
from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

from transfer import timing
from transfer.locks import file_lock


def params_key(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:12]


def build_once(target: Path, build: Callable[[Path], object], phase: str = "data_generation") -> Path:
    """Run `build(tmp_dir)` unless `target` exists; the finished folder is renamed into place."""
    with file_lock(target.with_name(target.name + ".lock")):
        if not target.exists():
            tmp = target.with_name(target.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            with timing.timed(phase):
                build(tmp)
            tmp.rename(target)
    return target
