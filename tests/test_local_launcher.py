"""The local launcher's scheduling helpers (its runs are in tests/test_grid.py)."""
from hydra_plugins.transfer_launchers.local import auto_jobs, models_in_turn


def test_models_take_turns_and_keep_their_own_order() -> None:
    jobs = [[f"model={m}", f"source_task={t}"] for m in ("llava", "qwen", "idefics") for t in ("none", "A", "B")]
    jobs.append(["model=qwen", "source_task=C"])
    order = models_in_turn(jobs)
    assert sorted(order) == list(range(len(jobs)))
    assert [jobs[i][0] for i in order[:3]] == ["model=llava", "model=qwen", "model=idefics"]
    assert [jobs[i][1] for i in order if jobs[i][0] == "model=qwen"] == [f"source_task={t}" for t in "none A B C".split()]


def test_auto_is_one_cell_with_a_gpu_and_two_on_a_multicore_cpu(monkeypatch) -> None:
    monkeypatch.setattr("hydra_plugins.transfer_launchers.local.has_cuda", lambda: True)
    assert auto_jobs() == 1
    monkeypatch.setattr("hydra_plugins.transfer_launchers.local.has_cuda", lambda: False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1})
    assert auto_jobs() == 2
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0})
    assert auto_jobs() == 1
