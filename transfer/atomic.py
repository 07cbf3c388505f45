"""Atomic file writes (temp file in the same folder + os.replace): a reader never sees a half-written output."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import polars as pl


def _replace_from_temp(path: Path, write) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        write(fd, tmp)
        os.chmod(tmp, 0o644)                        # mkstemp makes 0600; outputs are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_bytes(path: str | Path, data: bytes | str) -> Path:
    """Write bytes or text, flushed to disk before the rename."""
    def write(fd: int, _tmp: str) -> None:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())

    return _replace_from_temp(Path(path), write)


def write_parquet(df: pl.DataFrame, path: str | Path) -> Path:
    def write(fd: int, tmp: str) -> None:
        os.close(fd)
        df.write_parquet(tmp)

    return _replace_from_temp(Path(path), write)


def write_json(obj, path: str | Path) -> Path:
    return write_bytes(path, json.dumps(obj, indent=2, default=str) + "\n")
