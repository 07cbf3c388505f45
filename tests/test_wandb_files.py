"""Offline W&B run files, written by real wandb and read back (transfer.wandb_files): the reader itself; what
transfer.tracking logs for a cell (metrics, letter shares, artifact names) and that no W&B step can fail a job;
transfer.sync's plan of a sweep's offline folders (a cell run resumed by the reducer, a re-run cell) and its summary
update against a fake W&B server (only the HTTP boundary is fake)."""
from __future__ import annotations

import json
import re
import struct
import time
import zlib
from pathlib import Path

import polars as pl
import pytest
import wandb
from wandb.proto import wandb_internal_pb2 as pb

from tests.fake_wandb import FakeWandb, operations, serve
from tests.helpers import run_cli
from transfer import sync
from transfer.spec import WandbSpec
from transfer.tracking import (
    ARTIFACT_NAME_MAX,
    artifact_name,
    cell_summary,
    letter_shares,
    log_cell_results,
    never_fatal,
    run_id,
    wandb_run,
)
from transfer.wandb_files import CHUNK, FULL, HEADER, IDENT, MAGIC, read_run, records

NOTES = "x" * 70_000    # a summary value larger than two 32 KiB blocks: its record spans FIRST/MIDDLE/LAST chunks
OFFLINE = WandbSpec(mode="offline", project="transfer", entity=None, init_timeout=30)


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("wandb")
    run = wandb.init(mode="offline", dir=root, project="transfer", group="demo", job_type="cell",
                     name="qwen/Counting/seed0", id="cellrun0", tags=["model:qwen", "source:Counting", "seed:0"],
                     config={"model": "qwen", "source_task": "Counting", "seed": 0, "train": {"lr": 0.001}},
                     settings=wandb.Settings(silent=True, console="off"))
    run.define_metric("train/global_step")
    run.define_metric("train/*", step_metric="train/global_step")
    run.define_metric("pgf/*", summary="max")
    for step in range(3):
        run.log({"train/loss": 1.0 / (step + 1), "train/global_step": step, "pgf/x": [0.1, 0.3, 0.2][step]})
    run.config.update({"data_source": "synthetic"})
    run.summary.update({"eval/Counting/accuracy": 0.5, "status": "done", "notes": NOTES})
    run.log({"eval/Counting/letters": wandb.Table(columns=["letter", "share"], data=[["A", 0.75], ["B", 0.25]])})
    data = root / "questions.txt"
    data.write_text("q1\nq2\n")
    artifact = wandb.Artifact("questions", type="dataset")
    artifact.add_file(str(data))
    run.log_artifact(artifact, aliases=["v-test"])
    with pytest.raises(TypeError, match="offline"):    # wandb 0.31: no use_artifact in offline mode, not even
        run.use_artifact(wandb.Artifact("other", type="dataset"))   # of an Artifact built here
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
    assert abs(offline_run["start_time"] - time.time()) < 600


def test_history_metrics_and_summary(offline_run):
    rows = [r for r in offline_run["history"] if "train/loss" in r]
    assert [(r["train/global_step"], r["train/loss"]) for r in rows] == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
    assert {"name": "train/*", "step_metric": "train/global_step", "summary": []} in offline_run["metrics"]
    assert {"name": "pgf/*", "step_metric": "", "summary": ["max"]} in offline_run["metrics"]
    summary = offline_run["summary"]
    assert summary["pgf/x"] == {"max": 0.3}      # an explicit summary op nests the value under its name
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
    assert (run["id"], run["job_type"], run["start_time"]) == ("r1", "reduce", None)
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
    (run_dir / "run-r1.wandb").unlink()
    with pytest.raises(ValueError, match="expected one run-<id>.wandb file, found 0"):
        read_run(run_dir)


# ---------------------------------------------------------------- what a cell logs

def _frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Scores and predictions of a cell: Counting answered A, A, A, B; Jigsaw B, B, (none), A; Depth (none) x 3, C."""
    scores = pl.DataFrame({"target_task": ["Counting", "Jigsaw", "Relative_Depth"], "n": [4, 4, 4],
                           "correct": [2, 3, 1], "accuracy": [0.5, 0.75, 0.25], "accuracy_raw": [0.5, 0.75, 0.25],
                           "chance": [0.25, 0.5, 0.5]})
    predicted = {"Counting": [0, 0, 0, 1], "Jigsaw": [1, 1, -1, 0], "Relative_Depth": [-1, -1, -1, 2]}
    predictions = pl.DataFrame({"target_task": [t for t, p in predicted.items() for _ in p],
                                "predicted": [i for p in predicted.values() for i in p]})
    return scores, predictions


def test_letter_shares_and_the_top_letter_share():
    scores, predictions = _frames()
    assert letter_shares(predictions).to_dicts() == [
        {"target_task": "Counting", "A": 0.75, "B": 0.25, "C": 0.0, "unparsed": 0.0},
        {"target_task": "Jigsaw", "A": 0.25, "B": 0.5, "C": 0.0, "unparsed": 0.25},
        {"target_task": "Relative_Depth", "A": 0.0, "B": 0.0, "C": 0.25, "unparsed": 0.75}]
    summary = cell_summary(scores, predictions)
    assert [summary[f"eval/{t}/top_letter_share"] for t in ("Counting", "Jigsaw", "Relative_Depth")] == [
        0.75, 0.5, 0.25]                                            # unparsed answers are no letter
    assert letter_shares(predictions.filter(pl.col("predicted") >= 0)).columns == ["target_task", "A", "B", "C"]
    everything_a = predictions.with_columns(pl.lit(0).alias("predicted"))
    assert cell_summary(scores, everything_a)["eval/Jigsaw/top_letter_share"] == 1.0


def test_artifact_names_hold_the_sweep_and_stay_valid_for_wandb():
    assert artifact_name("main", "qwen", "Counting", 0) == "cell-main-qwen-Counting-seed0"
    assert artifact_name("main", "qwen", "Counting", 0) != artifact_name("other", "qwen", "Counting", 0)
    long = [artifact_name("s" * 100, "m" * 100, label, 3) for label in ("mix-a", "mix-b")]
    assert len(set(long)) == 2 and all(len(n) == ARTIFACT_NAME_MAX for n in long)
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", n) for n in long) and long[0].startswith("cell-sss")
    from wandb.sdk.artifacts._validators import validate_artifact_name

    assert validate_artifact_name(long[0]) == long[0]


def _next_second() -> None:
    """Wait for the next wall-clock second: wandb names an offline folder by its start second and the run id."""
    time.sleep(1.001 - time.time() % 1)


def _cell_run(sweep_dir: Path, name: str, *, train: bool) -> None:
    """A cell's W&B run as transfer.cell logs it."""
    scores, predictions = _frames()
    (sweep_dir / "scores.parquet").write_bytes(b"scores")
    with wandb_run(OFFLINE, sweep_dir=sweep_dir, group=sweep_dir.name, job_type="cell", name=name, run_key=name,
                   config=lambda: {"model": name.split("/")[0]}, tags=lambda: [f"model:{name.split('/')[0]}"]) as run:
        run.define_metrics()
        for step in range(2 if train else 0):
            run.log({"train/loss": 1.0 / (step + 1), "train/global_step": step})
        log_cell_results(run, scores, predictions, artifact_name(sweep_dir.name, *name.split("/")[:2], 0),
                         [sweep_dir / "scores.parquet"], {"config_hash": "h"})


def _resume(sweep_dir: Path, name: str, values: dict) -> None:
    """The reducer writing a cell's PGF into its run (transfer.reduce)."""
    with wandb_run(OFFLINE, sweep_dir=sweep_dir, group=sweep_dir.name, job_type="cell", name=name, run_key=name,
                   config={}) as run:
        run.summarize(values)


PGF = {"pgf/Counting": 0.25, "pgf/Counting/ci_low": -0.1, "pgf/Counting/ci_high": None, "dacc/Counting": 0.1}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """Offline runs of a small sweep `demo`: a finetuned cell and its PGF from the reducer; a `none` cell; a cell
    run twice (a re-run) then given its PGF; and a folder whose log is damaged."""
    sweep_dir = tmp_path_factory.mktemp("outputs") / "demo"
    sweep_dir.mkdir()
    _cell_run(sweep_dir, "qwen/Counting/seed0", train=True)
    _cell_run(sweep_dir, "qwen/none/seed0", train=False)
    _cell_run(sweep_dir, "qwen/Jigsaw/seed0", train=True)
    _next_second()
    _cell_run(sweep_dir, "qwen/Jigsaw/seed0", train=True)
    _resume(sweep_dir, "qwen/Counting/seed0", PGF)
    _next_second()
    _resume(sweep_dir, "qwen/Jigsaw/seed0", {"pgf/Jigsaw": 0.5})
    _resume(sweep_dir, "qwen/Counting/seed0", {"pgf/Counting": 0.3})   # a later reduce: the last value wins
    wandb.teardown()
    damaged = sweep_dir / "wandb" / "offline-run-20260101_000000-damaged"
    damaged.mkdir()
    (damaged / "run-damaged.wandb").write_bytes(b"not a log")
    return sweep_dir


def _folders(sweep_dir: Path, name: str) -> list[Path]:
    return sorted((sweep_dir / "wandb").glob(f"offline-run-*-{run_id('demo', name)}"))


def test_a_cell_run_defines_its_metrics_and_logs_its_letters(sweep):
    run = read_run(_folders(sweep, "qwen/Counting/seed0")[0])
    assert {(m["name"], m["step_metric"], tuple(m["summary"])) for m in run["metrics"]} == {
        ("train/global_step", "", ()), *((p, "train/global_step", ()) for p in ("train/*", "eval/*", "pgf/*",
                                                                              "dacc/*"))}
    assert run["summary"]["eval/Counting/top_letter_share"] == 0.75
    assert run["summary"]["eval/letters"]["_type"] == "table-file"              # the plain last value
    assert [a["name"] for a in run["artifacts"] if a["type"] == "cell-results"] == ["cell-demo-qwen-Counting-seed0"]


def test_the_sync_plan_uploads_one_folder_per_run_and_applies_the_later_summaries(sweep):
    plan = sync.plan_sync([sweep])
    runs = {r.name: r for r in plan.runs}
    assert sorted(runs) == ["qwen/Counting/seed0", "qwen/Jigsaw/seed0", "qwen/none/seed0"]
    counting, jigsaw, none = (_folders(sweep, n) for n in ("qwen/Counting/seed0", "qwen/Jigsaw/seed0",
                                                            "qwen/none/seed0"))
    assert len(counting) == 3 and len(jigsaw) == 3 and len(none) == 1
    assert (runs["qwen/Counting/seed0"].upload, runs["qwen/Counting/seed0"].summary_from) == (
        counting[0], tuple(counting[1:]))
    assert runs["qwen/Counting/seed0"].summary == {**PGF, "pgf/Counting": 0.3}      # no `_runtime`: wandb's own
    assert (runs["qwen/Jigsaw/seed0"].upload, runs["qwen/Jigsaw/seed0"].superseded) == (jigsaw[1], (jigsaw[0],))
    assert runs["qwen/Jigsaw/seed0"].summary == {"pgf/Jigsaw": 0.5}
    assert (runs["qwen/none/seed0"].upload, runs["qwen/none/seed0"].summary) == (none[0], {})
    assert {(r.run_id, r.project, r.entity, r.uploaded) for r in plan.runs} == {
        (run_id("demo", n), "transfer", "", False) for n in runs}
    ((folder, why),) = plan.unreadable
    assert folder.name.endswith("-damaged") and "not a W&B transaction log" in why


def test_the_dry_run_prints_the_plan_without_the_network(sweep, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")     # the discard port: any request would fail
    assert sync.main([f"outputs={sweep.parent}", "sweep=demo", "dry_run=true"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("3 W&B runs: 3 folders to upload, 2 summaries to apply afterwards, 1 folders superseded, "
                        "1 unreadable")
    counting = next(line for line in lines if "qwen/Counting/seed0" in line)
    first, *later = _folders(sweep, "qwen/Counting/seed0")
    assert counting == (f"{run_id('demo', 'qwen/Counting/seed0')} qwen/Counting/seed0 [cell]: upload {first}; "
                        f"then set 4 summary keys from {', '.join(f.name for f in later)}")
    assert lines[-1].startswith("unreadable ") and len(lines) == 5
    assert sync.main([f"outputs={sweep.parent}", "dry_run=true"]) == 0          # every sweep: the same one here
    assert capsys.readouterr().out.splitlines() == lines


@pytest.mark.parametrize("args, message", [
    (["sweep=../x"], "sweep='../x': expected one folder name"),
    (["dry_run=maybe"], "dry_run='maybe': expected true or false"),
    (["colour=red"], "unknown argument 'colour=red'; expected KEY=VALUE with KEY in sweep, outputs, dry_run"),
    (["sweep=nope"], "no offline W&B runs under"),
    (["outputs={file}"], "outputs='{file}': expected a folder holding sweeps"),
])
def test_bad_arguments_get_one_line(sweep, tmp_path, capsys, args, message):
    (tmp_path / "file").write_text("")
    args = [a.format(file=tmp_path / "file") for a in args]
    assert sync.main([f"outputs={sweep.parent}", "dry_run=true", *args]) == 2     # a later KEY= wins
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith("error: ") and message.format(file=tmp_path / "file") in captured.err


def test_without_credentials_nothing_is_uploaded(sweep, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_IDENTITY_TOKEN_FILE", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    assert sync.main([f"outputs={sweep.parent}", "sweep=demo"]) == 1
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "no W&B credentials" in out
    assert not list(sweep.glob("wandb/*/*.synced"))


def test_the_summary_goes_to_the_uploaded_run_through_the_public_api(sweep, monkeypatch):
    """Against a fake W&B server: the run is read, and its summary written back once with the later keys."""
    counting = next(r for r in sync.plan_sync([sweep]).runs if r.name == "qwen/Counting/seed0")
    with serve(monkeypatch):
        FakeWandb.runs = {counting.run_id: {"eval/mean_accuracy": 0.5, "pgf/Counting": 0.0}}
        sync.apply_summary(wandb.Api(), counting)
        upserts = [c["variables"] for c in FakeWandb.calls if c["operation"] == "UpsertBucket"]
        assert operations().count("Run") == 1 and len(upserts) == 1
        assert upserts[0]["id"] == f"storage-{counting.run_id}"
        assert json.loads(upserts[0]["summaryMetrics"]) == {"eval/mean_accuracy": 0.5, **PGF, "pgf/Counting": 0.3}
        missing = next(r for r in sync.plan_sync([sweep]).runs if r.name == "qwen/none/seed0")
        with pytest.raises(wandb.errors.CommError, match="Could not find run"):
            sync.apply_summary(wandb.Api(), missing)                     # a run the upload did not create


# ---------------------------------------------------------------- no W&B step fails a job

def test_failing_wandb_steps_are_logged_and_the_run_goes_on(tmp_path, caplog):
    """Real failures inside W&B steps (a missing report, figure or artifact file, a table that cannot be made,
    predictions without a `predicted` column): each is logged once and dropped, and the run still records the rest."""
    scores, predictions = _frames()
    with wandb_run(OFFLINE, sweep_dir=tmp_path, group="g", job_type="reduce", name="r", run_key="r",
                   config={"cells": 1}) as run:
        run.log_html("report", tmp_path / "missing.html")
        run.log_images("figures", [tmp_path / "missing.png"])
        run.log_table("broken", lambda: pl.read_csv(tmp_path / "missing.csv"))
        run.log_artifact("missing-files", "x", [tmp_path / "missing.parquet"])
        log_cell_results(run, scores, predictions.drop("predicted"), "cell-g-m-s-seed0", [], {})
        run.summarize({"status": "done"})
    wandb.teardown()
    with never_fatal("a step"):
        raise OSError("disk full")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    for what in ("html report", "images figures", "table broken", "artifact", "summary", "table eval/letters",
                 "a step"):
        assert any(w.startswith(f"W&B {what} failed") for w in warnings), (what, warnings)
    (run,) = [read_run(d) for d in (tmp_path / "wandb").glob("offline-run-*")]
    assert run["exit_code"] == 0 and run["summary"]["status"] == "done"
    assert run["summary"]["scores"]["_type"] == "table-file"                   # the steps after a failed one ran
    with pytest.raises(KeyboardInterrupt), never_fatal("a step"):
        raise KeyboardInterrupt


def test_a_broken_wandb_install_fails_no_cell_and_no_reducer(tiny_checkpoints, tmp_path):
    """`import wandb` raising (a broken installation first on the path): both cells and the reducer finish."""
    broken = tmp_path / "site" / "wandb"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text('raise ImportError("wandb is broken in this installation")\n')
    outputs = tmp_path / "outputs"
    done = run_cli(["-m", "model=qwen", f"model.checkpoint={tiny_checkpoints['qwen']}", "source_task=none,Counting",
                    "experiment=test", "targets=[Counting,Jigsaw]"], outputs, PYTHONPATH=str(tmp_path / "site"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "W&B unavailable (ImportError: wandb is broken in this installation)" in done.stdout + done.stderr
    sweep_dir = outputs / "test"
    for source in ("none", "Counting"):
        cell = sweep_dir / "cells" / "qwen" / source / "seed=0"
        assert (cell / "scores.parquet").exists() and not (cell / "FAILED.json").exists()
    assert "reduced 2 cells of test" in done.stdout + done.stderr            # logged after the reducer's W&B part
    assert not (sweep_dir / "wandb").exists() or not list((sweep_dir / "wandb").glob("offline-run-*"))
