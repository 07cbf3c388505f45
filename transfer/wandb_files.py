"""Read an offline W&B run (its run-<id>.wandb transaction log) back into plain Python.

wandb 0.31 has no Python reader any more (wandb.sdk.internal.datastore is gone; wandb-core, in Go, writes
the file), so this parses the format it writes with wandb's own protobuf schema: a 7-byte header
(":W&B", magic 0xBEE1, version 0), then LevelDB-log chunks in 32 KiB blocks (CRC-32 of type + data,
length, type FULL / FIRST / MIDDLE / LAST), each whole record a `wandb_internal_pb2.Record`.
`transfer.sync` reads the summaries of resumed runs with it; the tests read every run a sweep writes.
"""
from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

HEADER = struct.Struct("<4sHB")     # ident, magic, version
CHUNK = struct.Struct("<IHB")       # crc32, length, type
IDENT, MAGIC, BLOCK = b":W&B", 0xBEE1, 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> Iterator[pb.Record]:
    """Every record of a transaction log, in order; a truncated last chunk (a writer that died) ends it."""
    data = Path(path).read_bytes()
    if data[:HEADER.size] != HEADER.pack(IDENT, MAGIC, 0):
        raise ValueError(f"{path} is not a W&B transaction log (version 0)")
    pos, pending = HEADER.size, b""
    while pos + CHUNK.size <= len(data):
        if BLOCK - pos % BLOCK < CHUNK.size or data[pos:pos + CHUNK.size] == bytes(CHUNK.size):
            pos += BLOCK - pos % BLOCK                     # zero padding up to the next block
            continue
        crc, length, kind = CHUNK.unpack_from(data, pos)
        body = data[pos + CHUNK.size:pos + CHUNK.size + length]
        if len(body) < length:
            return
        if zlib.crc32(body, zlib.crc32(bytes([kind]))) != crc:
            raise ValueError(f"{path}: bad checksum at byte {pos}")
        pos += CHUNK.size + length
        pending = body if kind in (FULL, FIRST) else pending + body
        if kind in (FULL, LAST):
            yield pb.Record.FromString(pending)


def _set(tree: dict, path: list[str], value) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def _remove(tree: dict, path: list[str]) -> None:
    for key in path[:-1]:
        tree = tree.get(key, {})
    tree.pop(path[-1], None)


def _path(item) -> list[str]:
    return list(item.nested_key) or [item.key]


def _history_value(item: pb.HistoryItem):
    """value_json (what wandb-core writes), else the typed `value` oneof."""
    if item.value_json:
        return json.loads(item.value_json)
    kind = item.WhichOneof("value")
    if kind == "json":
        return json.loads(item.json)
    return None if kind in (None, "none") else getattr(item, kind)


def _apply(tree: dict, record: pb.ConfigRecord | pb.SummaryRecord) -> None:
    for item in record.update:
        _set(tree, _path(item), json.loads(item.value_json))
    for item in record.remove:
        _remove(tree, _path(item))


def _artifact(a: pb.ArtifactRecord) -> dict:
    return {"name": a.name, "type": a.type, "aliases": list(a.aliases), "used": a.use_after_commit,
            "entries": sorted(entry.path for entry in a.manifest.contents),
            "metadata": json.loads(a.metadata) if a.metadata else {}}


def _metric(m: pb.MetricRecord) -> dict:
    return {"name": m.name or m.glob_name, "step_metric": m.step_metric,
            "summary": sorted(field.name for field, on in m.summary.ListFields() if on)}


def run_file(run_dir: Path) -> Path:
    """The run-<id>.wandb file of an offline run folder."""
    found = sorted(Path(run_dir).glob("run-*.wandb"))
    if len(found) != 1:
        raise ValueError(f"{run_dir}: expected one run-<id>.wandb file, found {len(found)}")
    return found[0]


def read_run(run_dir: Path) -> dict:
    """An offline run directory (offline-run-<time>-<id>/) as a dict: id, name, entity, project, group, job_type,
    tags, start_time (seconds), config, history (one dict per logged row), summary (the final one), metrics
    (define_metric: name, step_metric, summary), artifacts (logged: name, type, aliases, entries, metadata),
    used_artifacts (id, name, type) and exit_code.

    Nested keys nest (a logged table's summary is a dict); wandb's own `_wandb` entries are left out.
    """
    run = {"id": "", "name": "", "entity": "", "project": "", "group": "", "job_type": "", "tags": [],
           "start_time": None, "config": {}, "history": [], "summary": {}, "metrics": [], "artifacts": [],
           "used_artifacts": [], "exit_code": None}
    for record in records(run_file(run_dir)):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.update(id=r.run_id, name=r.display_name, entity=r.entity, project=r.project, group=r.run_group,
                       job_type=r.job_type, tags=list(r.tags),
                       start_time=r.start_time.ToNanoseconds() / 1e9 if r.HasField("start_time") else None)
            _apply(run["config"], r.config)
        elif kind == "config":
            _apply(run["config"], record.config)
        elif kind == "history":
            row: dict = {}
            for item in record.history.item:
                _set(row, _path(item), _history_value(item))
            run["history"].append(row)
        elif kind == "summary":
            _apply(run["summary"], record.summary)
        elif kind == "metric":
            run["metrics"].append(_metric(record.metric))
        elif kind == "artifact":
            run["artifacts"].append(_artifact(record.artifact))
        elif kind == "use_artifact":
            u = record.use_artifact
            run["used_artifacts"].append({"id": u.id, "name": u.name, "type": u.type})
        elif kind == "exit":
            run["exit_code"] = record.exit.exit_code
    for tree in (run["config"], run["summary"]):
        tree.pop("_wandb", None)
    return run
