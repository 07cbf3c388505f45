"""The local launcher's scheduling, progress and failure helpers (its runs are in tests/test_grid.py and
tests/test_faults.py), and the library warnings every entry point silences."""
import os
import warnings

from hydra.core.utils import JobReturn, JobStatus

from hydra_plugins.transfer_launchers import local
from hydra_plugins.transfer_launchers.local import (
    Dispatch,
    GridProgress,
    auto_jobs,
    failure_summary,
    models_in_turn,
)
from transfer.cli import quiet_libraries


def test_models_take_turns_and_keep_their_own_order() -> None:
    jobs = [[f"model={m}", f"source_task={t}"] for m in ("llava", "qwen", "idefics") for t in ("none", "A", "B")]
    jobs.append(["model=qwen", "source_task=C"])
    order = models_in_turn(jobs)
    assert sorted(order) == list(range(len(jobs)))
    assert [jobs[i][0] for i in order[:3]] == ["model=llava", "model=qwen", "model=idefics"]
    qwen = [jobs[i][1] for i in order if jobs[i][0] == "model=qwen"]
    assert qwen == [f"source_task={t}" for t in "none A B C".split()]


def test_a_models_cells_wait_while_its_first_cell_runs_if_other_work_exists() -> None:
    jobs = [[f"model={m}", f"source_task={t}"] for m in ("llava", "qwen", "idefics") for t in ("A", "B", "C")]
    name = {i: f"{o[0][6:]}/{o[1][12:]}" for i, o in enumerate(jobs)}
    dispatch = Dispatch(jobs)
    started = [dispatch.next(), dispatch.next()]             # two workers: llava and qwen build their bases
    assert [name[i] for i in started] == ["llava/A", "qwen/A"]
    dispatch.finished(started[1])
    started.append(dispatch.next())                          # qwen's base is done; idefics starts building
    assert name[started[-1]] == "idefics/A"
    dispatch.finished(started[0])
    started += [dispatch.next()]                             # llava/B; then not idefics/B: its base is building
    dispatch.finished(started[-1])
    started += [dispatch.next()]
    dispatch.finished(started[-1])
    started += [dispatch.next()]
    assert [name[i] for i in started[3:]] == ["llava/B", "qwen/B", "llava/C"]
    dispatch.finished(started[2])                            # idefics' first cell is done: its cells go again
    started += [dispatch.next(), dispatch.next(), dispatch.next()]
    assert [name[i] for i in started[6:]] == ["idefics/B", "qwen/C", "idefics/C"]
    assert sorted(started) == list(range(len(jobs))) and not dispatch.queue


def test_only_waiting_cells_left_start_anyway() -> None:
    dispatch = Dispatch([["model=qwen", "source_task=A"], ["model=qwen", "source_task=B"]])
    assert [dispatch.next(), dispatch.next()] == [0, 1]


def test_auto_is_one_cell_with_a_gpu_and_two_on_a_multicore_cpu(monkeypatch) -> None:
    monkeypatch.setattr("hydra_plugins.transfer_launchers.local.has_cuda", lambda: True)
    assert auto_jobs() == 1
    monkeypatch.setattr("hydra_plugins.transfer_launchers.local.has_cuda", lambda: False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1})
    assert auto_jobs() == 2
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0})
    assert auto_jobs() == 1


def _done(seconds: float, pretrain: float = 0.0) -> JobReturn:
    return JobReturn(overrides=["model=qwen"], status=JobStatus.COMPLETED,
                     _return_value={"status": "done", "seconds": seconds, "pretrain_seconds": pretrain})


def _skipped() -> JobReturn:
    return JobReturn(overrides=["model=qwen"], status=JobStatus.COMPLETED, _return_value={"status": "skipped"})


def _failed(overrides: list[str], error: BaseException) -> JobReturn:
    return JobReturn(overrides=overrides, status=JobStatus.FAILED, _return_value=error)


def test_the_eta_leaves_out_cells_that_pretrained_and_says_so_until_one_did_not() -> None:
    now = [0.0]
    grid = GridProgress(total=6, workers=2, clock=lambda: now[0])
    now[0] = 300.0
    assert grid.cell_done(_done(300.0, pretrain=280.0)).endswith("ETA when the base models are pretrained")
    now[0] = 310.0
    assert grid.cell_done(_skipped()).endswith("ETA when the base models are pretrained")
    now[0] = 330.0
    line = grid.cell_done(_done(20.0))
    assert line == "grid: 3/6 cells done, 330s elapsed, ETA 30s"     # 20 s a cell x 3 left / 2 at a time
    now[0] = 340.0
    line = grid.cell_done(_failed(["model=qwen", "source_task=Jigsaw"], OSError(28, "No space left on device")))
    assert line == "grid: 4/6 cells done (1 failed), 340s elapsed, ETA 20s"   # 20 s x 2 left / 2
    grid.cell_done(_done(40.0))
    assert grid.eta() == "ETA 30s"                                        # mean 30 s x 1 left / min(2, 1)
    grid.cell_done(_done(40.0))
    assert grid.eta() == "ETA 0s"


def test_the_eta_waits_for_a_computed_cell_when_every_cell_so_far_was_skipped() -> None:
    grid = GridProgress(total=3)
    assert grid.cell_done(_skipped()).endswith("ETA once a cell has been computed")


def test_failed_cells_are_summarised_in_one_line_naming_each_cell_and_its_error() -> None:
    failed = [_failed(["model=qwen", f"source_task={task}", "sweep=s"], OSError(28, "No space left on device",
                                                                             f"/out/{task}/scores.parquet"))
              for task in ("none", "Counting", "Jigsaw", "Art_Style")]
    # a worker's one-line error (the class as the module holds it now: Hydra's plugin scan re-executes the module)
    failed.append(_failed(["model=llava"], local.CellFailed("ValueError: bad")))
    line = failure_summary(failed, total=9)
    assert "\n" not in line and line.startswith("5 of 9 cells failed (")
    assert ("model=qwen source_task=none sweep=s: OSError: [Errno 28] No space left on device: "
            "'/out/none/scores.parquet'") in line
    assert "source_task=Jigsaw" in line and "Art_Style" not in line and "and 2 more" in line
    assert "FAILED.json" in line and "re-run" in line
    assert failure_summary(failed[4:], total=1).startswith("1 of 1 cells failed (model=llava: ValueError: bad)")


def test_only_the_known_library_warnings_are_silenced(monkeypatch) -> None:
    from transformers.utils import logging as hf_logging

    monkeypatch.setattr("os.environ", dict(os.environ))   # quiet_libraries sets a few variables: not for later tests
    monkeypatch.setattr(hf_logging, "set_verbosity_error", lambda: None)
    with warnings.catch_warnings(record=True) as caught:   # its filters are undone on leaving
        warnings.simplefilter("always")
        quiet_libraries()
        warnings.warn("OMP_NUM_THREADS/MKL_NUM_THREADS unset, we set it at 2 to improve oob performance.",
                      UserWarning, stacklevel=1)
        warnings.warn("`torch.distributed.reduce_scatter_tensor` is deprecated. Please use "
                      "`torch.distributed.reduce_scatter_single` instead.", FutureWarning, stacklevel=1)
        warnings.warn("`foo` is deprecated, use `bar`", FutureWarning, stacklevel=1)
        warnings.warn("a library's other advice", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["`foo` is deprecated, use `bar`", "a library's other advice"]
