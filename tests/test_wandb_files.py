"""tests/wandb_files.py reads back what a real offline W&B run wrote: run fields, config, history, summary,
define_metric, artifacts; `use_artifact` records from a hand-written log (offline runs cannot use artifacts)."""
from __future__ import annotations

import struct
import zlib

import pytest
import wandb
from wandb.proto import wandb_internal_pb2 as pb

from tests.wandb_files import CHUNK, FULL, HEADER, IDENT, MAGIC, read_run, records

NOTES = "x" * 70_000    # a summary value larger than two 32 KiB blocks: its record spans FIRST/MIDDLE/LAST chunks


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("wandb")
    run = wandb.init(mode="offline", dir=root, project="transfer", group="demo", job_type="cell",
                     name="qwen/Counting/seed0", id="cellrun0", tags=["model:qwen", "source:Counting", "seed:0"],
                     config={"model": "qwen", "source_task": "Counting", "seed": 0, "train": {"lr": 0.001}},
                     settings=wandb.Settings(silent=True, console="off"))
    run.define_metric("train/global_step")
    run.define_metric("train/*", step_metric="train/global_step")
    for step in range(3):
        run.log({"train/loss": 1.0 / (step + 1), "train/global_step": step})
    run.config.update({"data_source": "synthetic"})
    run.summary.update({"eval/Counting/accuracy": 0.5, "status": "done", "notes": NOTES})
    run.log({"eval/Counting/letters": wandb.Table(columns=["letter", "share"], data=[["A", 0.75], ["B", 0.25]])})
    data = root / "questions.txt"
    data.write_text("q1\nq2\n")
    artifact = wandb.Artifact("questions", type="dataset")
    artifact.add_file(str(data))
    run.log_artifact(artifact, aliases=["v-test"])
    with pytest.raises(TypeError, match="offline"):    # wandb 0.31: no use_artifact in offline mode
        run.use_artifact(wandb.Artifact("other", type="dataset"))
    run.finish()
    wandb.teardown()    # finish() can return before wandb-core has written the log; teardown waits for it to exit
    (run_dir,) = (root / "wandb").glob("offline-run-*-cellrun0")
    return read_run(run_dir)


def test_the_run_fields_config_and_tags(offline_run):
    assert {k: offline_run[k] for k in ("id", "name", "project", "group", "job_type", "exit_code")} == {
        "id": "cellrun0", "name": "qwen/Counting/seed0", "project": "transfer", "group": "demo", "job_type": "cell",
        "exit_code": 0}
    assert offline_run["tags"] == ["model:qwen", "source:Counting", "seed:0"]
    assert offline_run["config"] == {"model": "qwen", "source_task": "Counting", "seed": 0, "train": {"lr": 0.001},
                                     "data_source": "synthetic"}


def test_history_metrics_and_summary(offline_run):
    rows = [r for r in offline_run["history"] if "train/loss" in r]
    assert [(r["train/global_step"], r["train/loss"]) for r in rows] == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
    assert {"name": "train/*", "step_metric": "train/global_step"} in offline_run["metrics"]
    summary = offline_run["summary"]
    assert (summary["eval/Counting/accuracy"], summary["status"], summary["notes"]) == (0.5, "done", NOTES)
    assert summary["eval/Counting/letters"]["_type"] == "table-file" and summary["train/loss"] == 1 / 3


def test_logged_artifacts(offline_run):
    by_name = {a["name"]: a for a in offline_run["artifacts"]}
    assert {**by_name["questions"], "aliases": sorted(by_name["questions"]["aliases"])} == {
        "name": "questions", "type": "dataset", "aliases": ["latest", "v-test"], "used": False,
        "entries": ["questions.txt"], "metadata": {}}
    assert any(a["type"] == "run_table" for a in offline_run["artifacts"])   # the logged table's artifact
    assert offline_run["used_artifacts"] == []


def _chunk(record: pb.Record) -> bytes:
    body = record.SerializeToString()
    return CHUNK.pack(zlib.crc32(body, zlib.crc32(bytes([FULL]))), len(body), FULL) + body


def test_use_artifact_records_and_corrupt_logs(tmp_path):
    run_dir = tmp_path / "run-1"
    run_dir.mkdir()
    log = [pb.Record(run=pb.RunRecord(run_id="r1", job_type="reduce")),
           pb.Record(use_artifact=pb.UseArtifactRecord(id="QXJ0aWZhY3Q6MQ==", name="questions", type="dataset"))]
    data = HEADER.pack(IDENT, MAGIC, 0) + b"".join(_chunk(r) for r in log)
    (run_dir / "run-r1.wandb").write_bytes(data)
    run = read_run(run_dir)
    assert (run["id"], run["job_type"]) == ("r1", "reduce")
    assert run["used_artifacts"] == [{"id": "QXJ0aWZhY3Q6MQ==", "name": "questions", "type": "dataset"}]
    (run_dir / "run-r1.wandb").write_bytes(data[:-3])                          # a writer that died mid-record
    assert len(list(records(run_dir / "run-r1.wandb"))) == 1
    flipped = bytearray(data)
    flipped[HEADER.size + CHUNK.size] ^= 0xFF
    (run_dir / "run-r1.wandb").write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="bad checksum"):
        list(records(run_dir / "run-r1.wandb"))
    (run_dir / "run-r1.wandb").write_bytes(struct.pack("<4sHB", b"LVL!", 0, 0))
    with pytest.raises(ValueError, match="not a W&B transaction log"):
        list(records(run_dir / "run-r1.wandb"))
