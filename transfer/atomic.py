"""Atomic file writes (temp file in the same folder + os.replace): a reader never sees a half-written output.

A write that fails (a full disk, a read-only folder) leaves no temp file behind and raises an OSError that names
the file it was writing, e.g. `[Errno 28] No space left on device: '.../scores.parquet'`."""
from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import polars as pl


def write_bytes(path: str | Path, data: bytes | str) -> Path:
    """Write bytes or text, flushed to disk before the rename."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)                        # mkstemp makes 0600; outputs are meant to be shared
        os.replace(tmp, path)
    except OSError as err:
        _remove(tmp)
        raise OSError(err.errno, err.strerror or str(err), str(path)) from None   # named: the file, not the temp
    except BaseException:
        _remove(tmp)
        raise
    return path


def write_parquet(df: pl.DataFrame, path: str | Path) -> Path:
    """Serialised in memory first, so that an I/O fault is the OSError of the file write (polars reports a full
    disk as a ComputeError); the bytes are those polars writes to a file."""
    buffer = io.BytesIO()
    df.write_parquet(buffer)
    return write_bytes(path, buffer.getvalue())


def write_json(obj, path: str | Path) -> Path:
    return write_bytes(path, json.dumps(obj, indent=2, default=str) + "\n")


def _remove(tmp: str | None) -> None:
    if tmp is not None:
        Path(tmp).unlink(missing_ok=True)
