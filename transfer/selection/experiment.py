"""The data-selection experiment, from a finished sweep to its cells and back.

1. questions: every task's eval questions (the chosen targets and the others alike), split in two by an idx hash
   (stratified by answer): the selection half, which chooses the sources, and the scoring half, which alone is
   scored (the targets' accuracy, and the collateral change on the 12 other tasks);
2. selection: the whole 13 x 13 PGF matrix, recomputed from the finished sweep's stored predictions on each task's
   selection half only: the raw PGF toward a target reads its column, the double-centred one every column;
3. arms (transfer.selection.arms) per target, each a training mixture of the same budget (examples, steps, lr,
   seeds); identical mixtures (the base arm, a draw two targets share) run once;
4. cells: one per mixture x seed, through the real CLI (`transfer.run` with `mix.arms` / `mix.arm`);
5. statistics (transfer.selection.statistics) on the scoring halves, per budget.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import polars as pl

from transfer.atomic import write_json
from transfer.data.blink import holdout_split
from transfer.pgf import base_rows, pgf_from_counts
from transfer.records import PREDICTIONS, SCORES, cell_dir, read_sweep
from transfer.selection.arms import arms_for_target, pgf_toward
from transfer.tasks import BASELINE, TASK_NAMES

ARMS, SELECTION = "arms.json", "selection.json"
ROLE_SCHEMA = {"target_task": pl.String, "arm": pl.String, "draw": pl.Int64, "budget": pl.Float64, "label": pl.String}


def question_halves(predictions: pl.DataFrame, model: str, targets: list[str], salt: str
                    ) -> dict[str, tuple[list[str], list[str]]]:
    """Per task the base model was evaluated on (the targets must be among them): (selection ids, scoring ids),
    its eval questions split in two halves by idx hash, stratified by the gold answer (the BLINK holdout split's
    rule). Every task is halved, not only the targets: the double-centred PGF reads every column, and the
    collateral change is scored on every task."""
    base = base_rows(predictions.filter(pl.col("model") == model))
    evaluated = set(base["target_task"].to_list())
    for target in targets:
        if target not in evaluated:
            raise ValueError(f"targets: {target} has no base predictions for model {model!r} in the source sweep")
    out = {}
    for task in (t for t in TASK_NAMES if t in evaluated):
        rows = base.filter(pl.col("target_task") == task)
        questions = [SimpleNamespace(idx=i, answer=g) for i, g in rows.select("idx", "gold").iter_rows()]
        chosen, scored = holdout_split(questions, 0.5, salt=f"{salt}/{task}")
        out[task] = ([q.idx for q in chosen], [q.idx for q in scored])
    return out


def selection_pgf(predictions: pl.DataFrame, model: str, selection: dict[str, list[str]]) -> pl.DataFrame:
    """The long PGF frame (model, source_task, target_task, seed, pgf) of a finished sweep, counted on each
    task's selection questions only (the tasks of `selection`)."""
    ids = pl.DataFrame([{"target_task": t, "idx": i} for t, chosen in selection.items() for i in chosen])
    rows = predictions.filter(pl.col("model") == model).join(ids, on=["target_task", "idx"], how="semi")
    counts = rows.group_by("model", "source_task", "seed", "target_task").agg(
        pl.len().alias("n"), pl.col("correct").sum().alias("correct"))
    base = base_rows(counts).select("model", "target_task", pl.col("correct").alias("base_correct"))
    tuned = counts.filter(pl.col("source_task") != BASELINE).join(base, on=["model", "target_task"])
    pgf = pgf_from_counts(tuned["correct"].to_numpy(), tuned["base_correct"].to_numpy(), tuned["n"].to_numpy())
    return (tuned.select("model", "source_task", "target_task", pl.col("seed").cast(pl.String))
            .with_columns(pl.Series("pgf", pgf, dtype=pl.Float64)).sort("source_task", "target_task", "seed"))


@dataclass(frozen=True)
class Selection:
    """What the source sweep chooses: the question halves of every task, each target's PGF per source (raw and
    double-centred, on the selection halves), the distinct mixtures to run and the role of each."""
    halves: dict[str, tuple[list[str], list[str]]]
    pgf_toward: dict[str, dict[str, dict[str, float]]]    # target -> source -> {"pgf", "pgf_centred"}
    mixtures: list[dict]
    roles: list[dict]


def select_arms(predictions: pl.DataFrame, model: str, targets: list[str], *, salt: str, k: int, n_random: int,
                examples: int, budgets: list[float], planted: pl.DataFrame | None = None,
                seed: int = 0) -> Selection:
    """Steps 1-3 on a finished sweep's stored predictions: halve every task, recompute the PGF matrix on the
    selection halves and build every target's arms from it."""
    halves = question_halves(predictions, model, targets, salt)
    pgf = selection_pgf(predictions, model, {t: chosen for t, (chosen, _) in halves.items()})
    toward = {}
    for target in targets:
        raw, centred = pgf_toward(pgf, model, target)
        toward[target] = {s: {"pgf": raw[s], "pgf_centred": centred[s]} for s in raw}
    mixtures, roles = plan_arms(pgf, model, targets, k=k, n_random=n_random, seed=seed, examples=examples,
                                budgets=budgets, planted=planted)
    return Selection(halves, toward, mixtures, roles)


def _label(tasks: tuple[str, ...], weights: tuple[float, ...], examples: int, steps_scale: float) -> str:
    key = json.dumps([tasks, [round(w, 12) for w in weights], examples, steps_scale])
    kind = "base" if not tasks else tasks[0] if len(tasks) == 1 else f"{len(tasks)}tasks"
    return f"mix-{kind}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def plan_arms(pgf: pl.DataFrame, model: str, targets: list[str], *, k: int, n_random: int, seed: int,
              examples: int, budgets: list[float],
              planted: pl.DataFrame | None = None) -> tuple[list[dict], list[dict]]:
    """(mixtures, roles): the distinct training mixtures to run (label, tasks, weights, examples, steps_scale), and
    for every target, arm, draw and budget the mixture that serves it."""
    mixtures: dict[str, dict] = {}
    roles = []
    for target in targets:
        for arm in arms_for_target(pgf, model, target, k, n_random, seed, planted):
            for budget in budgets:
                label = _label(arm.sources, arm.weights, examples, budget)
                mixtures.setdefault(label, {"label": label, "tasks": list(arm.sources), "weights": list(arm.weights),
                                            "examples": examples, "steps_scale": budget})
                roles.append({"target_task": target, "arm": arm.name, "draw": arm.draw, "budget": budget,
                              "label": label, "note": arm.note})
    return list(mixtures.values()), roles


def write_plan(out: Path, selection: Selection, meta: dict) -> Path:
    """arms.json (what the cells train on) and selection.json (which arm is which, the PGF that chose them and
    the question halves)."""
    write_json(selection.mixtures, out / ARMS)
    write_json({**meta, "roles": selection.roles, "pgf_toward": selection.pgf_toward,
                "questions": {t: {"selection": a, "scoring": b} for t, (a, b) in selection.halves.items()}},
               out / SELECTION)
    return out / ARMS


def cell_args(arms: Path, n_arms: int, model: str, seeds: list[int], sweep: str, overrides: list[str]) -> list[str]:
    """The `transfer.run` arguments of the experiment's cells: every mixture x seed, one multirun."""
    return ["-m", f"model={model}", "source_task=none", f"mix.arms={arms}", f"mix.arm=range(0,{n_arms})",
            f"seed={','.join(map(str, seeds))}", f"sweep={sweep}", "~hydra.callbacks.reduce_after_sweep",
            *overrides]


def scored_questions(sweep_dir: Path, model: str, plan: dict) -> pl.DataFrame:
    """The statistics' input (transfer.selection.statistics.QUESTION_COLUMNS + budget): every role's cells, each
    eval task's scoring questions only (every task is halved in the plan: the targets and the collateral tasks).
    A cell of the plan that is not finished, or that scored other questions than the source sweep, is a one-line
    error."""
    scoring = pl.DataFrame([{"eval_task": t, "idx": i} for t, q in plan["questions"].items() for i in q["scoring"]])
    roles = pl.DataFrame([{k: r[k] for k in ROLE_SCHEMA} for r in plan["roles"]], schema=ROLE_SCHEMA)
    frames = []
    for label in roles["label"].unique().sort():
        for seed in plan["seeds"]:
            cell = cell_dir(sweep_dir, model, label, seed)
            if not (cell / SCORES).exists():
                raise ValueError(f"selection cell {cell} is not finished; run the experiment again to complete it")
            frames.append(pl.read_parquet(cell / PREDICTIONS, columns=["target_task", "idx", "correct", "seed"])
                          .with_columns(pl.lit(label).alias("label")))
    scored = (pl.concat(frames).rename({"target_task": "eval_task"})
              .join(scoring, on=["eval_task", "idx"], how="semi"))
    missing = scoring.join(scored.select("eval_task", "idx").unique(), on=["eval_task", "idx"], how="anti")
    if missing.height:
        row = missing.row(0, named=True)
        raise ValueError(f"selection cells did not score {row['eval_task']} question {row['idx']}; expected the "
                         "source sweep's questions (the same data and eval settings)")
    return (roles.join(scored, on="label").select("target_task", "arm", "draw", "seed", "eval_task", "idx",
                                                   "correct", "budget"))


def source_predictions(sweep_dir: Path, model: str) -> pl.DataFrame:
    predictions = read_sweep(sweep_dir, PREDICTIONS)
    if predictions.is_empty() or model not in set(predictions["model"]):
        raise ValueError(f"from_sweep={sweep_dir.name!r}: no finished cells of model {model!r} under {sweep_dir}")
    return predictions.filter(pl.col("model") == model)

