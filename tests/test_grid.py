"""End to end: the real CLI runs the whole embedded grid (small test config), then re-runs it."""
import math

import polars as pl
import pytest

from tests.helpers import run_cli
from transfer.tasks import BASELINE, TASK_NAMES

MODELS = ["llava", "qwen", "idefics"]


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    outputs = tmp_path_factory.mktemp("outputs")
    first = run_cli(["-m", "model=llava,qwen,idefics", "source_task=glob(*)", "experiment=test"], outputs)
    assert first.returncode == 0, first.stderr[-3000:]
    return outputs / "test", first


def test_three_finite_13x13_matrices(grid):
    sweep, _ = grid
    for model in MODELS:
        matrix = pl.read_csv(sweep / "reduce" / f"pgf_{model}.csv")
        assert matrix.columns == ["source_task", *TASK_NAMES]
        assert matrix["source_task"].to_list() == TASK_NAMES
        values = matrix.drop("source_task").to_numpy()
        assert values.shape == (13, 13) and all(math.isfinite(v) for v in values.ravel())
        accuracy = pl.read_csv(sweep / "reduce" / f"accuracy_{model}.csv")
        assert accuracy["source_task"].to_list() == [BASELINE, *TASK_NAMES]
        assert (sweep / "reduce" / f"heatmap_{model}.png").stat().st_size > 0
    assert (sweep / "reduce" / "analysis.json").exists() and (sweep / "reduce" / "report.html").exists()
    assert pl.read_parquet(sweep / "reduce" / "missing.parquet").is_empty()


def test_validation_summary_and_planted_table(grid):
    """summary.json: every family, numbers per key, counts within the grid; planted.parquet for the synthetic suite."""
    import json

    from transfer.embedded.planted import planted_table

    sweep, _ = grid
    summary = json.loads((sweep / "reduce" / "summary.json").read_text())
    assert sorted(summary) == sorted(MODELS)
    for values in summary.values():
        assert values["n_seeds"] == 1 and values["off_diagonal_cells"] == 13 * 12
        assert 0 <= values["base_above_chance"] <= 13 and 0 <= values["diag_significant"] <= 13
        assert 0 <= values["planted_positive_p"] <= 1 and 0 <= values["planted_negative_p"] <= 1
        assert values["seed_spearman"] is None   # one seed: no halves to compare
    assert pl.read_parquet(sweep / "reduce" / "planted.parquet").equals(planted_table())
    cells = pl.read_parquet(sweep / "reduce" / "pgf_cells.parquet")
    assert {"pgf_mean", "pgf_std", "ci_low", "ci_high", "n_seeds", "dacc_mean", "dacc_low", "dacc_high"} <= set(
        cells.columns)
    assert cells.height == 3 * 13 * 13 and (cells["ci_low"] <= cells["ci_high"]).all()


def test_pgf_uses_the_none_baseline(grid):
    sweep, _ = grid
    cells = sweep / "cells" / "qwen"
    base = pl.read_parquet(cells / BASELINE / "seed=0" / "scores.parquet")
    tuned = pl.read_parquet(cells / "Jigsaw" / "seed=0" / "scores.parquet")
    long = pl.read_parquet(sweep / "reduce" / "pgf.parquet").filter(model="qwen", source_task="Jigsaw")
    for target in TASK_NAMES:
        n, kb = base.filter(target_task=target).select("n", "correct").row(0)
        kf = tuned.filter(target_task=target)["correct"][0]
        assert long.filter(target_task=target)["pgf"][0] == pytest.approx((kf - kb) / max(n - kb, 1))


def test_records(grid):
    sweep, _ = grid
    for model in MODELS:
        for source in [BASELINE, *TASK_NAMES]:
            cell = sweep / "cells" / model / source / "seed=0"
            scores = pl.read_parquet(cell / "scores.parquet")
            assert sorted(scores["target_task"]) == sorted(TASK_NAMES)
            assert scores["config_hash"].n_unique() == 1 and scores["git_commit"][0]
            assert ((scores["accuracy"] >= 0) & (scores["accuracy"] <= 1)).all()
            predictions = pl.read_parquet(cell / "predictions.parquet")
            assert predictions.height == scores["n"].sum()
            assert {"idx", "target_task", "gold", "predicted", "correct", "loglik"} <= set(predictions.columns)
            assert (source == BASELINE) != (cell / "adapter" / "adapter_config.json").exists()


def _runs(sweep) -> dict[str, list[dict]]:
    """Every offline run of the sweep read back from its .wandb file, by run id, in the order written."""
    from transfer.wandb_files import read_run

    runs: dict[str, list[dict]] = {}
    for folder in sorted((sweep / "wandb").glob("offline-run-*")):
        run = read_run(folder)
        runs.setdefault(run["id"], []).append(run)
    return runs


def test_wandb_offline_runs_under_the_sweep(grid):
    """One run per cell plus the reduce run; the reducer resumed every finetuned cell's run (its PGF)."""
    from transfer.tracking import run_id

    sweep, _ = grid
    runs = _runs(sweep)
    assert len(runs) == 3 * 14 + 1
    for model in MODELS:
        for source in [BASELINE, *TASK_NAMES]:
            parts = runs[run_id("test", f"{model}/{source}/seed0")]
            assert len(parts) == (1 if source == BASELINE else 2)


def test_cell_runs_group_compare_and_log_training_live(grid):
    sweep, _ = grid
    from transfer.tracking import run_id

    first, resumed = _runs(sweep)[run_id("test", "qwen/Counting/seed0")]
    assert first["job_type"] == "cell" and first["group"] == "test"
    assert {"model:qwen", "source:Counting", "seed:0", "data:synthetic"} <= set(first["tags"])
    assert any(t.startswith("data_revision:") for t in first["tags"])
    config = first["config"]
    assert (config["model"], config["family"], config["source_task"], config["seed"], config["sweep"]) == (
        "qwen", "qwen", "Counting", 0, "test") and config["config_hash"] and config["data_source"] == "synthetic"
    train = [row for row in first["history"] if "train/loss" in row]
    steps = [row["train/global_step"] for row in train]
    assert len(train) >= 2 and steps == sorted(steps) and steps[-1] <= 4
    assert all(row["train/learning_rate"] is not None and row["train/step_time"] > 0 for row in train)
    adapter = sweep / "cells" / "qwen" / "Counting" / "seed=0" / "adapter" / "adapter_config.json"
    assert max(row["_timestamp"] for row in train) <= adapter.stat().st_mtime   # logged while training ran
    summary = first["summary"]
    scores = pl.read_parquet(sweep / "cells" / "qwen" / "Counting" / "seed=0" / "scores.parquet")
    for row in scores.iter_rows(named=True):
        key = f"eval/{row['target_task']}"
        assert summary[f"{key}/accuracy"] == row["accuracy"] and summary[f"{key}/chance"] == row["chance"]
        assert summary[f"{key}/stderr"] == pytest.approx(math.sqrt(row["accuracy"] * (1 - row["accuracy"]) / row["n"]))
        assert 0 < summary[f"{key}/top_letter_share"] <= 1
    assert summary["status"] == "done" and summary["eval/mean_accuracy"] == pytest.approx(scores["accuracy"].mean())
    assert {(m["name"], m["step_metric"], tuple(m["summary"])) for m in first["metrics"]} == {
        ("train/global_step", "", ()), *((p, "train/global_step", ()) for p in ("train/*", "eval/*", "pgf/*",
                                                                              "dacc/*"))}
    assert summary["eval/letters"]["_type"] == "table-file"     # the default summary: the last value, not nested
    cell_artifact = [a for a in first["artifacts"] if a["name"] == "cell-test-qwen-Counting-seed0"]
    assert cell_artifact and cell_artifact[0]["type"] == "cell-results"
    assert cell_artifact[0]["entries"] == ["predictions.parquet", "scores.parquet"]
    long = pl.read_parquet(sweep / "reduce" / "pgf.parquet").filter(model="qwen", source_task="Counting")
    for row in long.iter_rows(named=True):   # the reducer wrote the cell's PGF into its run
        assert resumed["summary"][f"pgf/{row['target_task']}"] == pytest.approx(row["pgf"])
        assert resumed["summary"][f"dacc/{row['target_task']}"] == pytest.approx(row["accuracy"] - row["base_accuracy"])
    assert resumed["summary"]["pgf/Jigsaw/ci_low"] <= resumed["summary"]["pgf/Jigsaw/ci_high"]


def test_the_reduce_run_records_its_inputs_and_outputs(grid):
    from transfer.tracking import run_id

    sweep, _ = grid
    (reduce,) = _runs(sweep)[run_id("test", "reduce")]
    assert reduce["job_type"] == "reduce" and reduce["config"]["cells"] == 42
    outputs = [a for a in reduce["artifacts"] if a["name"] == "reduce-test"]
    assert outputs and {"pgf.parquet", "analysis.json", "report.html", "missing.parquet"} <= set(outputs[0]["entries"])
    inputs = outputs[0]["metadata"]["inputs"]   # the lineage, as offline runs can record it (docs/wandb.md)
    assert len(inputs) == 42 and "cell-test-llava-Jigsaw-seed0" in inputs
    assert "report" in reduce["summary"] and "figures/heatmap_qwen" in reduce["summary"]


def test_the_sync_plan_of_the_sweep_uploads_each_first_folder_and_applies_the_reducers_summaries(grid, capsys):
    """transfer.sync's dry run over the real offline runs: per run id the cell's own folder is uploaded and the
    reducer's later folder is read for its summary (the PGF keys), never uploaded."""
    from transfer.sync import main, plan_sync

    sweep, _ = grid
    runs = _runs(sweep)
    plan = plan_sync([sweep])
    assert len(plan.runs) == len(runs) == 3 * 14 + 1 and not plan.unreadable
    for entry in plan.runs:
        parts = sorted((sweep / "wandb").glob(f"offline-run-*-{entry.run_id}"))
        finetuned = entry.job_type == "cell" and entry.name.split("/")[1] != BASELINE
        assert len(parts) == (2 if finetuned else 1)
        assert (entry.upload, entry.summary_from, entry.superseded) == (parts[0], tuple(parts[1:]), ())
        resumed = {k: v for k, v in runs[entry.run_id][-1]["summary"].items() if not k.startswith("_")}
        assert entry.summary == (resumed if finetuned else {})
        assert not finetuned or {"pgf/mean_offdiag", "pgf/Jigsaw", "dacc/Jigsaw"} <= set(entry.summary)
    assert main([f"outputs={sweep.parent}", "sweep=test", "dry_run=true"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("43 W&B runs: 43 folders to upload, 39 summaries to apply afterwards") and len(
        lines) == 44


def test_every_dashboard_panel_reads_a_key_the_runs_log(grid):
    from transfer.dashboard import build_spec, panel_keys

    sweep, _ = grid
    logged = set()
    for parts in _runs(sweep).values():
        for run in parts:
            logged |= set(run["summary"]) | {k for row in run["history"] for k in row}
    spec = build_spec(sweep, entity="someone", project="transfer")
    missing = panel_keys(spec) - logged
    assert not missing, sorted(missing)


def test_second_run_skips_every_finished_cell(grid):
    sweep, _ = grid
    stamps = {p: p.stat().st_mtime_ns for p in sweep.glob("cells/*/*/seed=0/scores.parquet")}
    again = run_cli(["-m", "model=llava,qwen,idefics", "source_task=glob(*)", "experiment=test"], sweep.parent)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("skip finished cell") + again.stdout.count("skip finished cell") == 42
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_changed_config_refuses_to_mix_and_keeps_results(grid):
    sweep, _ = grid
    scores = sweep / "cells" / "llava" / "Counting" / "seed=0" / "scores.parquet"
    before = scores.read_bytes()
    out = run_cli(["model=llava", "source_task=Counting", "experiment=test", "train.steps=5"], sweep.parent)
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "overwrite=true" in lines[0]
    assert scores.read_bytes() == before


def test_cells_side_by_side_match_the_sequential_grid(grid):
    """hydra.launcher.jobs=2: two worker processes run cells at the same time, with the sequential results."""
    import json

    sweep, _ = grid
    sources = [BASELINE, "Counting", "Jigsaw"]
    out = run_cli(["-m", "model=qwen", f"source_task={','.join(sources)}", "experiment=test", "sweep=side_by_side",
                   "hydra.launcher.jobs=2"], sweep.parent)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "3 cells, 2 at a time" in out.stderr + out.stdout
    parallel = sweep.parent / "side_by_side" / "cells" / "qwen"
    spans = []
    for source in sources:
        timings = json.loads((parallel / source / "seed=0" / "timings.json").read_text())
        spans.append((timings["started_at"], timings["started_at"] + timings["wall"]))
        mine, theirs = (pl.read_parquet(root / source / "seed=0" / "predictions.parquet").drop("sweep")
                        for root in (parallel, sweep / "cells" / "qwen"))
        assert mine.drop("loglik").equals(theirs.drop("loglik"))
        assert [round(x, 4) for row in mine["loglik"] for x in row] == [round(x, 4) for row in theirs["loglik"]
                                                                         for x in row]
    (a0, a1), (b0, b1) = spans[:2]
    assert a0 < b1 and b0 < a1   # the first two cells overlap in time


def test_a_none_cell_of_another_seed_copies_the_finished_baseline(grid):
    """The base model does not depend on the seed: none/seed=1 copies none/seed=0 (same config and base)."""
    import json

    from transfer.cell import _baseline_of_another_seed

    sweep, _ = grid
    cells = sweep / "cells" / "qwen" / BASELINE
    out = run_cli(["model=qwen", f"source_task={BASELINE}", "seed=1", "experiment=test"], sweep.parent)
    assert out.returncode == 0, out.stderr[-3000:]
    first, second = (pl.read_parquet(cells / f"seed={s}" / "predictions.parquet") for s in (0, 1))
    assert second["seed"].unique().to_list() == [1]
    assert second.drop("seed").equals(first.drop("seed"))
    scores = pl.read_parquet(cells / "seed=1" / "scores.parquet")
    assert scores.drop("seed", "eval_seconds", "created_at").equals(
        pl.read_parquet(cells / "seed=0" / "scores.parquet").drop("seed", "eval_seconds", "created_at"))
    assert scores["eval_seconds"].max() == 0.0                       # nothing was evaluated again
    assert json.loads((cells / "seed=1" / "timings.json").read_text()).get("model_load", 0.0) == 0.0
    chash, checkpoint = scores["config_hash"][0], scores["checkpoint"][0]
    assert _baseline_of_another_seed(cells / "seed=2", chash, checkpoint, "batch") is not None
    assert _baseline_of_another_seed(cells / "seed=2", "another-config", checkpoint, "batch") is None
    assert _baseline_of_another_seed(cells / "seed=2", chash, "another/base", "batch") is None
    again = run_cli(["model=qwen", f"source_task={BASELINE}", "seed=1", "experiment=test", "overwrite=true"],
                    sweep.parent)
    assert again.returncode == 0, again.stderr[-3000:]
    recomputed = pl.read_parquet(cells / "seed=1" / "scores.parquet")
    assert recomputed["eval_seconds"].min() > 0.0                    # overwrite=true evaluates the base again
    assert recomputed["correct"].to_list() == scores["correct"].to_list()


@pytest.fixture(scope="module")
def selection(grid):
    """The data-selection experiment on the grid: two targets, every arm, one seed."""
    sweep, _ = grid
    args = ["from_sweep=test", "model=qwen", "targets=[Art_Style,Counting]", "k=2", "seeds=[0]", "n_boot=200",
            "overrides=['experiment=test']", "sweep=sel"]
    out = run_cli(args, sweep.parent, module="transfer.select")
    assert out.returncode == 0, out.stderr[-3000:]
    return sweep.parent / "sel", args


def test_selection_runs_every_arm_and_writes_finite_statistics(selection):
    import json

    sweep, _ = selection
    plan = json.loads((sweep / "selection" / "selection.json").read_text())
    assert {r["arm"] for r in plan["roles"] if r["target_task"] == "Counting"} >= {
        "base", "direct", "uniform", "random", "pgf_top", "pgf_weighted", "pgf_centred", "bottom"}
    assert sum(r["arm"] == "random" for r in plan["roles"] if r["target_task"] == "Art_Style") == 5
    assert any(r["arm"] == "oracle" for r in plan["roles"] if r["target_task"] == "Art_Style")   # planted donors
    accuracy = pl.read_csv(sweep / "selection" / "budget=1" / "accuracy.csv")
    assert set(accuracy["arm"]) >= {"base", "direct", "random", "pgf_top", "bottom"}
    assert accuracy.select(pl.col("accuracy", "ci_low", "ci_high").is_finite().all()).row(0) == (True,) * 3
    assert sorted(plan["questions"]) == sorted(TASK_NAMES)   # every task halved: the centring and collateral read all
    for task, questions in plan["questions"].items():   # scored on the scoring half only, never on the other
        assert not set(questions["selection"]) & set(questions["scoring"])
        assert set(accuracy.filter(target_task=task)["n_questions"]) <= {len(questions["scoring"])}
    assert set(accuracy["target_task"]) == {"Art_Style", "Counting"}
    versus = pl.read_csv(sweep / "selection" / "budget=1" / "versus_random.csv")
    assert set(versus["arm"]) == {"pgf_top", "pgf_weighted", "pgf_centred"} and versus["difference"].is_finite().all()
    collateral = pl.read_csv(sweep / "selection" / "budget=1" / "collateral.csv")
    assert (collateral["n_eval_tasks"] == 12).all() and collateral["collateral"].is_finite().all()
    assert (sweep / "selection" / "report.html").stat().st_size > 0
    assert (sweep / "selection" / "budget=1" / "target_Counting.png").exists()
    (run,) = [r for parts in _runs(sweep).values() for r in parts if r["name"] == "selection"]
    assert (run["job_type"], run["group"], run["exit_code"]) == ("reduce", "sel", 0)
    assert run["config"]["targets"] == ["Art_Style", "Counting"]
    (results,) = [a for a in run["artifacts"] if a["type"] == "selection-results"]
    assert results["name"] == "selection-sel"
    assert {"report.html", "selection.json", "arms.json", "collateral.csv"} <= set(results["entries"])
    tables = {e for a in run["artifacts"] if a["type"] == "run_table" for e in a["entries"]}
    assert tables == {f"selection/budget=1/{t}.table.json" for t in ("accuracy", "versus_random", "across_targets",
                                                                      "collateral")}


def _flipped_source(grid_sweep, outputs, plan: dict, half: str) -> str:
    """A copy of the source sweep's qwen records (and planted table) under `outputs`, with every cell's
    correctness flipped on each task's `half` questions; returns its sweep name."""
    import shutil

    name = f"flip-{half}"
    flip = pl.DataFrame([{"target_task": t, "idx": i} for t, q in plan["questions"].items() for i in q[half]])
    for predictions in (grid_sweep / "cells" / "qwen").glob("*/seed=*/predictions.parquet"):
        cell = outputs / name / predictions.parent.relative_to(grid_sweep)
        cell.mkdir(parents=True)
        shutil.copy(predictions.parent / "scores.parquet", cell)
        frame = pl.read_parquet(predictions).join(flip.with_columns(pl.lit(True).alias("flip")),
                                                  on=["target_task", "idx"], how="left")
        frame.with_columns(pl.when(pl.col("flip")).then(~pl.col("correct")).otherwise(pl.col("correct"))
                           .alias("correct")).drop("flip").write_parquet(cell / "predictions.parquet")
    (outputs / name / "reduce").mkdir()
    shutil.copy(grid_sweep / "reduce" / "planted.parquet", outputs / name / "reduce")
    return name


def test_selection_never_reads_the_scored_questions(grid, selection, tmp_path):
    """The experiment's own preparation (transfer.select.prepare, what the CLI runs) records the same arms, PGF and
    question halves when the source sweep's stored answers on the scoring halves are flipped, and another PGF when
    the selection halves are."""
    import json

    from tests.helpers import compose
    from transfer.select import prepare
    from transfer.spec import SelectSpec

    (sel, args), (source, _) = selection, grid
    plan = json.loads((sel / "selection" / "selection.json").read_text())
    arms = json.loads((sel / "selection" / "arms.json").read_text())
    recorded = {}
    for half in ("scoring", "selection"):
        name = _flipped_source(source, tmp_path, plan, half)
        keep = [a for a in args if not a.startswith(("from_sweep=", "sweep="))]
        spec = SelectSpec.from_config(compose(*keep, f"from_sweep={name}", f"sweep=out-{half}",
                                              f"paths.outputs={tmp_path}", config_name="select"))
        prepare(spec, tmp_path)
        recorded[half] = (json.loads((tmp_path / f"out-{half}" / "selection" / "selection.json").read_text()),
                          json.loads((tmp_path / f"out-{half}" / "selection" / "arms.json").read_text()))
    scoring, scoring_arms = recorded["scoring"]
    assert scoring_arms == arms
    for key in ("roles", "pgf_toward", "questions", "notes"):
        assert scoring[key] == plan[key], key
    assert recorded["selection"][0]["pgf_toward"] != plan["pgf_toward"]   # the selection halves do choose


def test_the_budget_curve_runs_every_mixture_at_each_share_of_the_steps(grid):
    """budgets=[0.5,1.0]: every mixture twice, the same data and examples, the steps scaled; a half-budget cell
    trains half of experiment=test's 4 steps on as many questions as the full one."""
    import json

    sweep, _ = grid
    out = run_cli(["from_sweep=test", "model=qwen", "targets=[Counting]", "k=2", "seeds=[0]", "budgets=[0.5,1.0]",
                   "run=false", "overrides=['experiment=test']", "sweep=curve"], sweep.parent, module="transfer.select")
    assert out.returncode == 0, out.stderr[-3000:]
    arms_file = sweep.parent / "curve" / "selection" / "arms.json"
    mixtures = json.loads(arms_file.read_text())
    by_data = {}
    for m in mixtures:
        by_data.setdefault((tuple(m["tasks"]), tuple(m["weights"]), m["examples"]), []).append(m["steps_scale"])
    assert sorted(map(sorted, by_data.values())) == [[0.5, 1.0]] * len(by_data)
    roles = json.loads((sweep.parent / "curve" / "selection" / "selection.json").read_text())["roles"]
    assert {r["budget"] for r in roles} == {0.5, 1.0}
    direct = {m["steps_scale"]: i for i, m in enumerate(mixtures) if m["tasks"] == ["Counting"]}
    trained = {}
    for scale, arm in direct.items():
        cell = run_cli(["model=qwen", f"mix.arms={arms_file}", f"mix.arm={arm}", "experiment=test", "sweep=curve"],
                       sweep.parent)
        assert cell.returncode == 0, cell.stderr[-3000:]
        (scores,) = (sweep.parent / "curve" / "cells" / "qwen").glob(f"{mixtures[arm]['label']}/seed=0/scores.parquet")
        trained[scale] = pl.read_parquet(scores).select("train_steps", "train_examples").unique().row(0)
    assert trained[0.5][0] == 2 and trained[1.0][0] == 4 and trained[0.5][1] == trained[1.0][1] > 0


def test_a_mixture_cell_is_skipped_on_rerun_and_refused_on_a_changed_config(selection):
    import json

    sweep, args = selection
    again = run_cli(args, sweep.parent, module="transfer.select")
    assert again.returncode == 0, again.stderr[-3000:]
    n_cells = json.loads((sweep / "selection" / "selection.json").read_text())["cells"]
    assert (again.stdout + again.stderr).count("skip finished cell") == n_cells
    changed = run_cli(["model=qwen", f"mix.arms={sweep / 'selection' / 'arms.json'}", "mix.arm=1", "experiment=test",
                       "sweep=sel", "train.steps=5"], sweep.parent)
    assert changed.returncode == 2 and "overwrite=true" in changed.stderr and changed.stderr.count("\n") == 1
