"""Faults survived, in real subprocesses of the real CLI: a cell killed (SIGKILL) at each fault point leaves nothing
finished and the re-run completes it; the sweep's own process killed while cells run leaves no worker writing and
the re-run completes the grid with nothing lost, duplicated or recomputed; two sweeps on one folder compute a cell
once; damaged records are holes that a re-run recomputes; a base model deleted while the sweep runs is pretrained
again; a full disk fails only the cell that hit it, in one line; a lock left by a killed process is taken over; an
unwritable W&B folder does not stop a cell."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import psutil
import pytest

from tests.helpers import ROOT, child_env, run_cli
from transfer.faults import POINTS
from transfer.locks import file_lock

SMALL = ["experiment=test", "targets=[Counting,Jigsaw]", "train.steps=6", "train.save_steps=2"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """A cache with the suite and qwen's pretrained base model, built once for the module."""
    cache = tmp_path_factory.mktemp("cache")
    out = run_cli(["model=qwen", "source_task=none", *SMALL, f"paths.cache={cache}", "sweep=warm"],
                  tmp_path_factory.mktemp("warm"))
    assert out.returncode == 0, out.stderr[-3000:]
    return cache


def _cell(outputs: Path, sweep: str, source: str = "Counting", model: str = "qwen") -> Path:
    return outputs / sweep / "cells" / model / source / "seed=0"


def _run(outputs: Path, cache: Path, *args: str, **env: str):
    return run_cli(["model=qwen", "source_task=Counting", *SMALL, f"paths.cache={cache}", *args], outputs, **env)


def test_a_cell_killed_at_every_fault_point_is_never_finished_and_the_rerun_completes_it(cache, tmp_path):
    """One cell killed at each fault point in turn (each run goes on from what the last left), then completed."""
    cell = _cell(tmp_path, "f")
    for point in POINTS:
        killed = _run(tmp_path, cache, "sweep=f", TRANSFER_FAULT=point)
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr[-2000:])
        assert not (cell / "scores.parquet").exists(), point   # nothing half-done is marked finished
        if point == "mid_training":
            assert list((cell / "checkpoints").glob("checkpoint-*/trainer_state.json"))
        if point == "mid_eval":
            assert "resuming training from" in killed.stdout + killed.stderr   # from the mid-training checkpoint
            assert (cell / "adapter" / "adapter_config.json").exists()   # the finished adapter is kept ...
        if point == "between_records":
            assert (cell / "predictions.parquet").exists()   # ... and predictions without scores are not trusted
    again = _run(tmp_path, cache, "sweep=f")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "reusing finished adapter" in again.stdout + again.stderr
    scores, predictions = (pl.read_parquet(cell / name) for name in ("scores.parquet", "predictions.parquet"))
    assert sorted(scores["target_task"]) == ["Counting", "Jigsaw"] and predictions.height == scores["n"].sum()


def test_killing_the_sweep_process_stops_its_workers_and_the_rerun_completes_the_grid(cache, tmp_path):
    args = ["-m", "model=qwen", "source_task=none,Counting,Jigsaw,Art_Style", *SMALL, f"paths.cache={cache}",
            "sweep=k", "hydra.launcher.jobs=2"]
    proc = subprocess.Popen([sys.executable, "-m", "transfer.run", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=child_env(TRANSFER_OUTPUTS=str(tmp_path)))
    cells = tmp_path / "k" / "cells" / "qwen"
    deadline = time.monotonic() + 300
    while not list(cells.glob("*/seed=0/scores.parquet")):   # one cell done, the others running
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    workers = psutil.Process(proc.pid).children(recursive=True)
    os.kill(proc.pid, signal.SIGKILL)   # the sweep's process only: its workers are not signalled by us
    proc.wait()
    gone, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive, f"workers left running: {alive}"
    finished = {p.parent.parent.name: p.stat().st_mtime_ns for p in cells.glob("*/seed=0/scores.parquet")}
    time.sleep(2)
    assert {p.parent.parent.name: p.stat().st_mtime_ns for p in cells.glob("*/seed=0/scores.parquet")} == finished
    again = run_cli(args, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    done = {p.parent.parent.name: p.stat().st_mtime_ns for p in cells.glob("*/seed=0/scores.parquet")}
    assert sorted(done) == ["Art_Style", "Counting", "Jigsaw", "none"]   # nothing lost
    assert all(done[c] == t for c, t in finished.items())               # nothing finished was recomputed
    log = again.stdout + again.stderr
    assert log.count("skip finished cell") == len(finished) and log.count("finished cell") == 4


def test_two_sweeps_on_one_folder_compute_each_cell_once(cache, tmp_path):
    args = ["-m", "model=qwen", "source_task=none,Counting", *SMALL, f"paths.cache={cache}", "sweep=two",
            "hydra.launcher.jobs=1"]
    env = child_env(TRANSFER_OUTPUTS=str(tmp_path))
    procs = [subprocess.Popen([sys.executable, "-m", "transfer.run", *args], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), logs[0][-2000:] + logs[1][-2000:]
    computed = sum(log.count("finished cell ") - log.count("skip finished cell") for log in logs)
    assert computed == 2   # each of the two cells once, in one of the sweeps; the other skipped it


def test_damaged_records_are_holes_and_a_rerun_recomputes_them(cache, tmp_path):
    for source in ("none", "Counting"):
        out = _run(tmp_path, cache, "sweep=d", f"source_task={source}")
        assert out.returncode == 0, out.stderr[-3000:]
    scores = _cell(tmp_path, "d") / "scores.parquet"
    scores.write_bytes(scores.read_bytes()[:50])   # truncated
    reduced = run_cli(["sweep=d"], tmp_path, module="transfer.reduce")
    assert reduced.returncode == 0, reduced.stderr[-3000:]
    holes = pl.read_parquet(tmp_path / "d" / "reduce" / "missing.parquet").filter(source_task="Counting")
    assert holes["status"].to_list() == ["unreadable"] and "scores.parquet" in holes["error"][0]
    again = _run(tmp_path, cache, "sweep=d")
    assert again.returncode == 0 and "unreadable record" in again.stdout + again.stderr
    assert pl.read_parquet(scores).height == 2
    predictions = _cell(tmp_path, "d", "none") / "predictions.parquet"
    predictions.write_bytes(b"not parquet")
    again = _run(tmp_path, cache, "sweep=d", "source_task=none")
    assert again.returncode == 0 and pl.read_parquet(predictions).height > 0


def test_a_base_model_deleted_while_the_sweep_runs_is_pretrained_again(cache, tmp_path):
    """The sweep pauses between its first and second cell (a fault point), the test deletes the cached base model,
    and the later cells pretrain it again, to the same weights."""
    own_cache = tmp_path / "cache"
    shutil.copytree(cache, own_cache)
    (base,) = [p for p in (own_cache / "models").iterdir() if p.is_dir()]
    weights = (base / "model.safetensors").read_bytes()
    flag = tmp_path / "paused"
    args = ["-m", "model=qwen", "source_task=none,Counting,Jigsaw", *SMALL, f"paths.cache={own_cache}", "sweep=b",
            "hydra.launcher.jobs=1"]
    proc = subprocess.Popen([sys.executable, "-m", "transfer.run", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env=child_env(TRANSFER_OUTPUTS=str(tmp_path), TRANSFER_PAUSE=f"between_cells:{flag}"))
    try:
        deadline = time.monotonic() + 300
        while not flag.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()[-3000:]
            time.sleep(0.1)
        assert (_cell(tmp_path, "b", "none") / "scores.parquet").exists()   # the first cell is finished
        shutil.rmtree(base)
        flag.unlink()   # the sweep goes on
        log = proc.communicate(timeout=600)[0]
    finally:
        proc.kill()
    assert proc.returncode == 0, log[-3000:]
    assert log.count("pretraining the base model qwen") == 1 and "grid: 3/3 cells done" in log
    assert all((_cell(tmp_path, "b", s) / "scores.parquet").exists() for s in ("none", "Counting", "Jigsaw"))
    assert (base / "model.safetensors").read_bytes() == weights   # the same weights: the cells still agree


@contextmanager
def full_filesystem(folder: Path, free_pages: int):
    """A small tmpfs mounted on `folder` and filled until `free_pages` pages are left (a real full disk); the test
    is skipped where this machine does not allow mounting."""
    folder.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)],
                      capture_output=True).returncode:
        pytest.skip("mounting a tmpfs is not allowed on this machine")
    try:
        page = os.statvfs(folder).f_frsize
        (folder / ".filler").write_bytes(b"x" * (os.statvfs(folder).f_bavail - free_pages) * page)
        assert os.statvfs(folder).f_bavail == free_pages
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def test_a_full_disk_fails_the_cell_in_one_line_and_the_sweep_goes_on(cache, tmp_path):
    """A record write that hits ENOSPC (a real full tmpfs on the cell's folder): the cell is marked FAILED, the
    other cells of the multirun run, the sweep ends with one line naming the file, finished cells are untouched,
    and once there is space the re-run computes only that cell."""
    first = _run(tmp_path, cache, "sweep=full")   # a finished cell before the disk fills
    assert first.returncode == 0, first.stderr[-3000:]
    counting = _cell(tmp_path, "full") / "scores.parquet"
    stamp = counting.stat().st_mtime_ns
    records = (_cell(tmp_path, "full") / "predictions.parquet").stat().st_size
    cell = _cell(tmp_path, "full", "none")
    args = ["-m", "model=qwen", "source_task=Counting,none,Jigsaw", *SMALL, f"paths.cache={cache}", "sweep=full",
            "hydra.launcher.jobs=2"]
    with full_filesystem(cell, free_pages=1) as folder:   # room for FAILED.json, not for the records
        assert records > os.statvfs(folder).f_frsize
        sweep = run_cli(args, tmp_path)
        assert sweep.returncode == 1, sweep.stderr[-3000:]
        message = sweep.stderr.strip().splitlines()[-1]
        assert message.startswith("error: 1 of 3 cells failed (model=qwen source_task=none"), message
        assert f"sweep=full: OSError: [Errno 28] No space left on device: '{cell / 'predictions.parquet'}'" in message
        assert "Traceback" not in sweep.stderr
        failed = json.loads((cell / "FAILED.json").read_text())
        assert "No space left on device" in failed["error"]
        assert sorted(p.name for p in cell.iterdir()) == [".filler", ".lock", "FAILED.json"]   # no temp file left
        assert counting.stat().st_mtime_ns == stamp                                          # finished: untouched
        assert (_cell(tmp_path, "full", "Jigsaw") / "scores.parquet").exists()               # the others ran
        holes = pl.read_parquet(tmp_path / "full" / "reduce" / "missing.parquet")            # the reducer ran
        assert holes.filter(source_task="none")["status"].to_list() == ["failed"]

        single = _run(tmp_path, cache, "sweep=full", "source_task=none")   # one cell: exit 2, one line
        assert single.returncode == 2, single.stderr[-3000:]
        assert single.stderr.strip() == f"error: [Errno 28] No space left on device: '{cell / 'predictions.parquet'}'"
    again = run_cli(args, tmp_path)   # the disk has space again
    assert again.returncode == 0, again.stderr[-3000:]
    assert (cell / "scores.parquet").exists() and not (cell / "FAILED.json").exists()
    assert counting.stat().st_mtime_ns == stamp
    assert (again.stdout + again.stderr).count("skip finished cell") == 2


def test_a_sweep_whose_every_cell_fails_ends_with_one_line_after_trying_the_reducer(cache, tmp_path):
    adapter = _cell(tmp_path, "bad") / "adapter"   # a real way for a cell to break: a corrupt finished adapter
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{ not json")
    out = run_cli(["-m", "model=qwen", "source_task=Counting", *SMALL, f"paths.cache={cache}", "sweep=bad"], tmp_path)
    assert out.returncode == 1, out.stderr[-3000:]
    assert out.stderr.strip().startswith("error: 1 of 1 cells failed (model=qwen source_task=Counting"), out.stderr
    assert out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr + out.stdout
    assert "ReduceAfterSweep.on_multirun_end raised FileNotFoundError: no finished cells" in out.stdout   # logged
    assert json.loads((_cell(tmp_path, "bad") / "FAILED.json").read_text())["error"]


def test_a_lock_left_by_a_killed_process_is_taken_over_and_never_held_twice(tmp_path):
    lock = tmp_path / "x.lock"
    code = f"from transfer.locks import file_lock\nwith file_lock(__import__('pathlib').Path({str(lock)!r})):\n" \
           f"    print('held', flush=True)\n    __import__('time').sleep(60)\n"
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    import fcntl

    with open(lock, "w") as handle:   # a second holder is refused while the first lives
        with pytest.raises(BlockingIOError):
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    holder.kill()
    holder.wait()
    assert lock.exists()   # the stale lock file stays behind ...
    started = time.monotonic()
    with file_lock(lock):  # ... and is taken over at once
        assert time.monotonic() - started < 5


def test_an_unwritable_wandb_folder_does_not_stop_a_cell(cache, tmp_path):
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "wandb").write_text("a file where the W&B folder should be\n")
    out = _run(tmp_path, cache, "sweep=w", "source_task=none")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "W&B unavailable" in out.stdout + out.stderr
    assert (_cell(tmp_path, "w", "none") / "scores.parquet").exists()
