"""A cell killed mid-training (SIGKILL, no chance to clean up) resumes from its last Trainer checkpoint when run
again, and ends with exactly the scores of an uninterrupted run."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from tests.helpers import child_env
from transfer.train import last_complete_checkpoint

ROOT = Path(__file__).resolve().parents[1]
STEPS = 60
CELL = ["model=qwen", "source_task=Counting", "experiment=test", f"train.steps={STEPS}", "train.save_steps=5",
        "targets=[Counting,Jigsaw,Art_Style]"]


def _start(outputs: Path, cache: Path, sweep: str) -> subprocess.Popen:
    env = child_env(TRANSFER_OUTPUTS=str(outputs))
    return subprocess.Popen([sys.executable, "-m", "transfer.run", *CELL, f"sweep={sweep}", f"paths.cache={cache}"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)   # its own process group: the kill takes its children too


def _finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-3000:]
    return out


def _kill_after_first_checkpoint(proc: subprocess.Popen, cell: Path) -> int:
    """SIGKILL the run once a complete checkpoint exists (trainer_state.json is written last); its step."""
    deadline = time.monotonic() + 600
    while not (done := sorted((cell / "checkpoints").glob("checkpoint-*/trainer_state.json"))):
        assert proc.poll() is None, f"the run ended before its first checkpoint: {proc.communicate()[0][-3000:]}"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return int(done[0].parent.name.split("-")[1])


def _cell(outputs: Path, sweep: str) -> Path:
    return outputs / sweep / "cells" / "qwen" / "Counting" / "seed=0"


@pytest.mark.slow   # three runs of one cell, plus the pretraining once
def test_a_killed_cell_resumes_from_its_checkpoint_with_the_uninterrupted_scores(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _finish(_start(tmp_path, cache, "reference"))

    killed_at = _kill_after_first_checkpoint(_start(tmp_path, cache, "resumed"), _cell(tmp_path, "resumed"))
    assert not (_cell(tmp_path, "resumed") / "scores.parquet").exists()
    log = _finish(_start(tmp_path, cache, "resumed"))

    resumed = [int(m) for m in re.findall(rf"resuming training from \S+checkpoint-\d+ \(step (\d+) of {STEPS}\)", log)]
    assert len(resumed) == 1 and killed_at <= resumed[0] < STEPS, log[-3000:]
    columns = ["target_task", "n", "correct", "accuracy", "train_steps"]
    ours, theirs = (pl.read_parquet(_cell(tmp_path, s) / "scores.parquet").select(columns)
                    for s in ("resumed", "reference"))
    assert ours.equals(theirs), f"resumed {ours} != uninterrupted {theirs}"
    ours, theirs = (pl.read_parquet(_cell(tmp_path, s) / "predictions.parquet").sort("target_task", "idx")
                    for s in ("resumed", "reference"))
    assert ours["predicted"].to_list() == theirs["predicted"].to_list()
    for a, b in zip(ours["loglik"].to_list(), theirs["loglik"].to_list()):
        assert a == pytest.approx(b, abs=1e-5)


def test_resume_skips_a_half_written_checkpoint(tmp_path: Path) -> None:
    """A preemption during a checkpoint save leaves checkpoint-N without trainer_state.json: resume from the one
    before."""
    assert last_complete_checkpoint(tmp_path / "absent") is None
    for step, complete in ((5, True), (10, True), (15, False)):
        (tmp_path / f"checkpoint-{step}").mkdir()
        if complete:
            (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-tmp").mkdir()
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")
