"""The local launcher's scheduling helpers (its runs are in tests/test_grid.py)."""
from hydra_plugins.transfer_launchers.local import Dispatch, auto_jobs, models_in_turn


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
