"""plan=true: the table of a sweep's cells, statuses, questions, prompt tokens and estimates, without running a model;
and grid.fraction / grid.cells, the subset of cells a multirun runs."""
from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import polars as pl
import pytest

from tests.helpers import compose_spec, run_cli
from transfer.plan import cost, status
from transfer.plan.questions import Profile, TaskProfile
from transfer.records import FAILED, PREDICTIONS, SCORES, cell_dir
from transfer.spec import GridSpec, SourceSpec, SpecError
from transfer.tasks import BASELINE, TASK_NAMES, TASKS

PAPER_MODELS = ["qwen2.5vl-3b", "qwen2.5vl-7b", "qwen2.5vl-32b"]


def _plan(outputs: Path, sweep: str) -> pl.DataFrame:
    return pl.read_csv(outputs / sweep / "plan.csv")


def test_the_embedded_grid_plan_counts_cells_questions_and_image_tokens_and_runs_nothing(tmp_path: Path) -> None:
    run = run_cli(["-m", "model=llava,qwen,idefics", "source_task=glob(*)", "experiment=test", "plan=true",
                   "grid.fraction=0.5"], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert not (tmp_path / "test" / "cells").exists() and not (tmp_path / ".cache" / "models").exists()
    plan = _plan(tmp_path, "test")
    assert plan.height == 3 * 14
    assert set(plan.select("model", "source_task").iter_rows()) == {
        (m, s) for m in ("llava", "qwen", "idefics") for s in [BASELINE, *TASK_NAMES]}
    runs = plan.filter(pl.col("status") == "to run")
    assert sorted(runs.filter(pl.col("source_task") == BASELINE)["model"]) == ["idefics", "llava", "qwen"]
    assert runs.group_by("model").len()["len"].to_list() == [1 + round(0.5 * 13)] * 3   # none + half the sources
    assert plan.filter(pl.col("status") != "to run")["status"].unique().to_list() == ["predicted"]
    # experiment=test: 64 training questions per task, 24 val questions evaluated up to 12 per target
    assert (plan["eval_questions"] == 13 * 12).all()
    assert plan.filter(pl.col("source_task") == BASELINE)["train_questions"].to_list() == [0] * 3
    assert (plan.filter(pl.col("source_task") != BASELINE)["train_questions"] == 64).all()
    # 16 image tokens per image in every tiny family ((64/16)^2; qwen (64/8)^2 merged 2x2), equal counts per target
    images = sum(TASKS[t].n_images for t in TASK_NAMES) / 13
    assert plan["image_tokens"].to_list() == pytest.approx([16 * images] * 42)
    # before the base model is built, text tokens are an estimate (exact once built: the test below)
    assert (plan["eval_tokens"] > plan["image_tokens"] + 20).all()
    assert (plan["device"] == "CPU").all() and (plan["hours"] > 0).all()
    printed = run.stdout
    assert "plan: 42 cells (21 predicted, 21 to run)" in printed
    assert all(f"{m}/{s}/0 " in printed for m, s, _ in plan.select("model", "source_task", "seed").iter_rows())
    assert "not cached yet" in printed and "estimate" in printed
    assert "local launcher: 21 cells" in printed


@pytest.fixture(scope="module")
def blink(tmp_path_factory) -> Path:
    from transfer.models.smoke import write_blink_fixture

    return write_blink_fixture(tmp_path_factory.mktemp("BLINK"), per_task=4)


def _counted(blink: Path) -> dict[str, tuple[int, int, float, float]]:
    """Per task (eval questions, train questions, prompt tokens, image tokens) per eval question, counted here:
    the reference processor's prompts, and image tokens from Qwen2.5-VL's resize rule with the paper's budget."""
    from PIL import Image
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    from transfer.data.splits import TaskData
    from transfer.encode import chat_prompt
    from transfer.models.families import load_processor
    from transfer.models.smoke import build_smoke

    spec = compose_spec("experiment=paper", f"data.root={blink}", "model=qwen2.5vl-7b")
    pixels = spec.model.pixels
    processor = load_processor("qwen", build_smoke("qwen", blink.parent / "reference", width="tiny"),
                               pixels.processor_kwargs())
    data, out = TaskData(spec.data, blink), {}
    for task in TASK_NAMES:
        questions = data.eval(task)
        tokens = [len(processor(images=q.images, text=[chat_prompt(processor, len(q.image_data), q.prompt)])
                      ["input_ids"][0]) for q in questions]
        image_tokens = []
        for q in questions:
            sizes = [Image.open(io.BytesIO(b)).size for b in q.image_data]
            image_tokens.append(sum(h * w // 28 ** 2 for h, w in (
                smart_resize(height, width, 28, pixels.min_pixels, pixels.max_pixels) for width, height in sizes)))
        out[task] = (len(questions), len(data.train(task)), sum(tokens) / len(tokens),
                     sum(image_tokens) / len(image_tokens))
    return out


def test_the_paper_plan_counts_blink_questions_and_tokens_and_gives_each_size_its_own_array(tmp_path, blink) -> None:
    run = run_cli(["-m", "experiment=paper", f"data.root={blink}", "seed=0", "plan=true"], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert not (tmp_path / "paper" / "cells").exists() and not (tmp_path / "paper" / "hydra" / ".submitit").exists()
    plan = _plan(tmp_path, "paper")
    assert plan.height == 3 * 14 and sorted(plan["model"].unique()) == sorted(PAPER_MODELS)
    assert plan["status"].unique().to_list() == ["to run"]
    counted = _counted(blink)
    n_eval = sum(c[0] for c in counted.values())
    assert (plan["eval_questions"] == n_eval).all()
    assert plan["eval_tokens"].to_list() == pytest.approx([sum(c[0] * c[2] for c in counted.values()) / n_eval] * 42)
    assert plan["image_tokens"].to_list() == pytest.approx([sum(c[0] * c[3] for c in counted.values()) / n_eval] * 42)
    for row in plan.filter(pl.col("source_task") != BASELINE).iter_rows(named=True):
        assert row["train_questions"] == counted[row["source_task"]][1]
    # GPU cells: the 3B on 1 GPU, 7B on 2, 32B on 8 (model.resources); cost per token grows with the parameters
    devices = dict(plan.select("model", "device").unique().iter_rows())
    assert devices == {"qwen2.5vl-3b": "1 GPU", "qwen2.5vl-7b": "2 GPU", "qwen2.5vl-32b": "8 GPU"}
    hours = {m: dict(g.select("source_task", "device_hours").iter_rows()) for (m,), g in plan.group_by("model")}
    # every device evaluates every target (x 8 devices); training shares the same global batch (train.global_batch)
    assert hours["qwen2.5vl-32b"][BASELINE] == pytest.approx(hours["qwen2.5vl-3b"][BASELINE] * 32 / 3 * 8)
    for source in counted:
        assert (32 / 3 * hours["qwen2.5vl-3b"][source] < hours["qwen2.5vl-32b"][source]
                < 32 / 3 * 8 * hours["qwen2.5vl-3b"][source])
    memory = dict(plan.group_by("model").agg(pl.col("mem_gb").max()).iter_rows())
    assert memory["qwen2.5vl-3b"] < memory["qwen2.5vl-7b"] < 80
    printed = run.stdout
    for k, (model, line) in enumerate([("qwen2.5vl-3b", "1 GPU, 1 task(s) x 8 CPUs, 64 GB, 360 min"),
                                       ("qwen2.5vl-7b", "2 GPU, 2 task(s) x 8 CPUs, 128 GB, 480 min"),
                                       ("qwen2.5vl-32b", "8 GPU, 8 task(s) x 8 CPUs, 480 GB, 1440 min")], start=1):
        assert f"SLURM job array {k}: 14 cells of {model} ({line})" in printed
    assert "SLURM reducer job after all 3 arrays (afterany)" in printed
    assert "reference processor" in printed and "A100" in printed


def _variants(tmp_path: Path, models=("qwen", "llava"), seeds=(0, 1), **grid) -> list:
    """Specs of a models x (none + 13 sources) x seeds grid, made from one composed spec."""
    base = compose_spec("experiment=test", f"paths.outputs={tmp_path}")
    grid_spec = GridSpec(**{"fraction": 1.0, "cells": None, "seed": 0, **grid})
    return [dataclasses.replace(base, model=dataclasses.replace(base.model, name=m), source_task=SourceSpec(s),
                                seed=k, grid=grid_spec)
            for m in models for s in [BASELINE, *TASK_NAMES] for k in seeds]


def _names(specs, chosen) -> set[str]:
    return {f"{s.model.name}/{s.source}/{s.seed}" for s, keep in zip(specs, chosen) if keep}


def test_grid_fraction_is_a_seeded_nested_share_of_each_models_sources_and_keeps_every_none_cell(tmp_path) -> None:
    from hydra_plugins.transfer_launchers.grid import in_grid

    half = in_grid(_variants(tmp_path, fraction=0.5))
    specs = _variants(tmp_path, fraction=0.5)
    assert in_grid(specs) == half                                       # deterministic
    kept = _names(specs, half)
    for model in ("qwen", "llava"):
        assert {f"{model}/{BASELINE}/0", f"{model}/{BASELINE}/1"} <= kept
        assert sum(n.startswith(f"{model}/") and f"/{BASELINE}/" not in n for n in kept) == 13   # half of 26
    quarter = _names(specs, in_grid(_variants(tmp_path, fraction=0.25)))
    assert quarter < kept                                               # a smaller share is a subset
    assert _names(specs, in_grid(_variants(tmp_path, fraction=0.5, seed=1))) != kept
    assert all(in_grid(_variants(tmp_path)))


def test_grid_cells_names_cells_or_takes_the_reducers_next_cells(tmp_path) -> None:
    from hydra_plugins.transfer_launchers.grid import in_grid

    specs = _variants(tmp_path, cells=["qwen/Counting/1", "llava/Jigsaw/0"])
    nones = {f"{m}/{BASELINE}/{k}" for m in ("qwen", "llava") for k in (0, 1)}
    assert _names(specs, in_grid(specs)) == nones | {"qwen/Counting/1", "llava/Jigsaw/0"}
    with pytest.raises(SpecError, match=r"^grid.cells: 'qwen/Countng/1' is not a cell of this sweep"):
        in_grid(_variants(tmp_path, cells=["qwen/Countng/1"]))
    with pytest.raises(SpecError, match=r"^grid.cells=\['qwen/Counting/1'\] and grid.fraction=0.5: expected one"):
        in_grid(_variants(tmp_path, cells=["qwen/Counting/1"], fraction=0.5))
    with pytest.raises(SpecError, match="no .*next_cells.csv; run a partial grid and its reducer first"):
        in_grid(_variants(tmp_path, cells=["next:2"]))
    sweep = specs[0].sweep_dir
    ranked = ["qwen/Jigsaw/0", "llava/Art_Style/1", "qwen/Counting/0"]
    (sweep / "reduce").mkdir(parents=True)
    pl.DataFrame({"cell": ranked, "seed": ["0", "1", "0"], "rank": [1, 2, 3]}).write_csv(
        sweep / "reduce" / "next_cells.csv")
    _finish(cell_dir(sweep, "qwen", "Jigsaw", 0), specs[0].config_hash())      # run since the reducer ranked it
    chosen = in_grid(_variants(tmp_path, cells=["next:2"]))
    assert _names(specs, chosen) == nones | {"llava/Art_Style/1", "qwen/Counting/0"}
    mixed = _variants(tmp_path, fraction=0.5)
    mixed[3] = dataclasses.replace(mixed[3], grid=GridSpec(1.0, None, 0))
    with pytest.raises(SpecError, match="^grid: the jobs of one sweep have different values"):
        in_grid(mixed)


def _finish(cell: Path, config_hash: str) -> None:
    cell.mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"config_hash": [config_hash]}).write_parquet(cell / SCORES)
    pl.DataFrame({"idx": ["q"]}).write_parquet(cell / PREDICTIONS)


def test_status_tells_finished_stale_failed_to_run_and_predicted_cells_apart(tmp_path) -> None:
    spec = _variants(tmp_path, seeds=(0,))[1]
    cell = cell_dir(spec.sweep_dir, spec.model.name, spec.source, spec.seed)
    assert status(spec, True) == "to run" and status(spec, False) == "predicted"
    cell.mkdir(parents=True)
    (cell / FAILED).write_text("{}")
    assert status(spec, True) == "failed"
    (cell / FAILED).unlink()                     # a cell that finishes removes its marker
    _finish(cell, spec.config_hash())
    assert status(spec, True) == status(spec, False) == "finished"
    _finish(cell, "another-config")
    assert status(spec, True) == "stale"
    assert status(dataclasses.replace(spec, overwrite=True), True) == "to run"


def test_the_plan_of_mixture_cells_lists_each_with_its_questions_tokens_and_cost(tmp_path) -> None:
    """A mixture cell of the data-selection experiment is planned like a task cell: its label, the training questions
    its mixture draws, their tokens weighted by the shares, and its share of the steps."""
    from transfer.plan import make_plan
    from transfer.plan.questions import profile

    arms = tmp_path / "arms.json"
    arms.write_text(json.dumps([
        {"label": "mix-one", "tasks": ["Counting"], "weights": [1.0], "examples": 64, "steps_scale": 1.0},
        {"label": "mix-two", "tasks": ["Counting", "Jigsaw"], "weights": [0.75, 0.25], "examples": 40,
         "steps_scale": 0.5},
        {"label": "mix-base", "tasks": [], "weights": [], "examples": 64}]))
    common = ("experiment=test", f"paths.outputs={tmp_path}", "model=qwen")
    specs = [compose_spec(*common, f"mix.arms={arms}", f"mix.arm={i}") for i in range(3)]
    specs += [compose_spec(*common, f"source_task={s}") for s in ("Counting", BASELINE)]
    plan = make_plan(specs, [True] * len(specs)).rows
    rows = {r["source_task"]: r for r in plan.iter_rows(named=True)}
    assert sorted(rows) == sorted(["mix-one", "mix-two", "mix-base", "Counting", BASELINE])
    assert all(r["status"] == "to run" and r["eval_questions"] == 13 * 12 for r in rows.values())
    tokens = {t: profile(specs[0]).tasks[t].train_tokens for t in ("Counting", "Jigsaw")}
    assert [rows[m]["train_questions"] for m in ("mix-one", "mix-two", "mix-base")] == [64, 40, 0]
    assert rows["mix-two"]["train_tokens"] == pytest.approx((30 * tokens["Counting"] + 10 * tokens["Jigsaw"]) / 40)
    assert rows["mix-one"]["train_tokens"] == pytest.approx(tokens["Counting"])
    assert rows["mix-base"]["train_tokens"] == 0
    # the same eval and overhead everywhere: the training part scales with steps x tokens per question
    assert rows["mix-one"]["hours"] == pytest.approx(rows["Counting"]["hours"])
    assert rows["mix-base"]["hours"] == pytest.approx(rows[BASELINE]["hours"])
    steps = specs[0].train.steps
    trained = {m: rows[m]["hours"] - rows[BASELINE]["hours"] for m in ("mix-one", "mix-two")}
    assert trained["mix-two"] / trained["mix-one"] == pytest.approx(
        max(1, round(steps * 0.5)) / steps * rows["mix-two"]["train_tokens"] / tokens["Counting"])


def test_embedded_prompt_tokens_equal_the_tokenizers_count_plus_the_image_tokens(tmp_path) -> None:
    """Once the tiny model exists (its processor in the cache), the plan's tokens per question are exact: the
    tokenizer's count of each sampled chat prompt, plus each image's placeholder expanded to its image tokens
    ((64 / 8)^2 patches merged 2 x 2 = 16 for qwen), counted here with the tokenizer alone (the cells' chat format,
    not the processor's image path the plan counts with)."""
    from transformers import AutoTokenizer

    from transfer.data.prompts import format_prompt
    from transfer.embedded.pretrain import CHAT_WORDS, pretrain_key
    from transfer.embedded.suite import generate_rows
    from transfer.embedded.tiny import build_tiny
    from transfer.encode import chat_prompt
    from transfer.models.families import load_processor
    from transfer.plan import make_plan
    from transfer.plan.questions import SAMPLE

    spec = compose_spec("experiment=test", f"paths.outputs={tmp_path}", "model=qwen", "source_task=Counting")
    tiny, data = spec.model.tiny, spec.data
    built = spec.cache_dir / "models" / f"{spec.model.name}-{pretrain_key(spec)}"
    build_tiny("qwen", dataclasses.asdict(tiny), CHAT_WORDS + ["How many discs are there?"], 0, built)
    processor, tokenizer = load_processor("qwen", built), AutoTokenizer.from_pretrained(built)   # the chat format
    per_image = (tiny.image_size // tiny.patch_size) ** 2 // tiny.merge_size ** 2

    def mean_tokens(task: str, split: str) -> float:
        counts = []
        for row in generate_rows(task, SAMPLE, seed=data.seed, split=split, image_size=data.image_size):
            text = chat_prompt(processor, len(row["images"]), format_prompt(row["question"], row["choices"]))
            assert text.count("<|image_pad|>") == len(row["images"])
            counts.append(len(tokenizer(text)["input_ids"]) + (per_image - 1) * len(row["images"]))
        return sum(counts) / len(counts)

    plan = make_plan([spec], [True])
    assert any("the pretrained tiny model's processor" in a for a in plan.assumptions)
    row = plan.rows.row(0, named=True)
    assert per_image == 16 and row["image_tokens"] == pytest.approx(
        16 * sum(TASKS[t].n_images for t in TASK_NAMES) / 13)
    # experiment=test evaluates 12 questions of every target: the targets weigh alike
    assert row["eval_tokens"] == pytest.approx(sum(mean_tokens(t, "val") for t in TASK_NAMES) / 13)
    assert row["train_tokens"] == pytest.approx(mean_tokens("Counting", "train"))


def _profile(tokens: float) -> Profile:
    return Profile({t: TaskProfile(100, 50, tokens, tokens, tokens / 2) for t in TASK_NAMES}, "test")


def test_gpu_figures_from_bench_json_scale_with_the_parameters_and_zero3_splits_the_weights(tmp_path, blink,
                                                                                          monkeypatch) -> None:
    rows = [{"family": "qwen", "mode": "zero2", "step": "train", "batch": 4, "seq_len": 1000, "tokens_per_s": 7000.0,
             "peak_mem_gib": 30.0},
            {"family": "qwen", "mode": "torch", "step": "eval", "batch": 8, "seq_len": 1000, "tokens_per_s": 14000.0,
             "peak_mem_gib": 20.0}]
    (tmp_path / "gpu.json").write_text(json.dumps(rows))
    monkeypatch.setenv("TRANSFER_GPU_FIGURES", str(tmp_path / "gpu.json"))
    small, large = (compose_spec("experiment=paper", f"data.root={blink}", f"model={m}", "source_task=Counting")
                    for m in ("qwen2.5vl-7b", "qwen2.5vl-32b"))
    profile = _profile(1000.0)
    fast, slow = cost.rates(small, profile), cost.rates(large, profile)
    assert "gpu.json" in fast.source and fast.train_tokens_s == pytest.approx(7000.0)
    assert slow.eval_tokens_s == pytest.approx(14000.0 * 7 / 32)
    seven, thirty_two = cost.estimate(small, profile, fast), cost.estimate(large, profile, slow)
    # experiment=paper: 200 steps of 16 questions over the cell's GPUs (train.global_batch), 1000 tokens each
    train_s = {gpus: 200 * 16 / gpus * 1000 / 7000.0 for gpus in (2, 8)}
    eval_s = 13 * 50 * 1000 / 14000.0
    assert seven.hours == pytest.approx((train_s[2] + eval_s) / 3600)
    assert seven.device_hours == pytest.approx(2 * seven.hours)              # 2 GPUs
    assert thirty_two.hours == pytest.approx((train_s[8] + eval_s) * 32 / 7 / 3600)
    assert cost.zero_stage(large) == 3 and cost.zero_stage(small) == 2
    weights_32b_per_gpu = 2 * 32 / 8
    assert weights_32b_per_gpu < thirty_two.mem_gb < 2 * 32
