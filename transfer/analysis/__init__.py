"""From a long PGF frame to findings: transferability, graph, cliques, personas, advice, figures, report.

Entry point: `analyze(pgf, out_dir, ...)` writes analysis.json, figures/*.png, tables/*.csv and report.html
into out_dir and returns the analysis dict plus `figures` (paths) and `tables` (polars frames) for logging.
"""
from __future__ import annotations

import json
import math
import re
import time
from itertools import combinations, pairwise
from pathlib import Path

import numpy as np
import polars as pl

from transfer.analysis.cliques import clique_table, model_cliques
from transfer.analysis.figures import plot_graph, plot_heatmap, plot_model_comparison, plot_scores
from transfer.analysis.graph import edge_table, transfer_graph
from transfer.analysis.personas import assigned_personas, persona_tests
from transfer.analysis.report import write_report
from transfer.analysis.selection import advice_by_target, selection_advice
from transfer.analysis.tables import (
    interval_mask,
    normalise_pgf,
    ordered_models,
    read_pgf_table,
    seed_cube,
    seed_mean_matrix,
    seed_std_matrix,
)
from transfer.analysis.transferability import SCORE_COLUMNS, SEED_MEAN, averages, transfer_scores
from transfer.atomic import write_bytes
from transfer.pgf import base_rows
from transfer.stats import permutation_test, spearman, wilcoxon_signed_rank
from transfer.tasks import BASELINE

__all__ = ["analyze", "plot_heatmap", "predicted_mask", "read_pgf_table", "seed_mean_matrix"]

_SCORE_KEYS = {"delta_pos": ("transferability", "positive"), "delta_neg": ("transferability", "negative"),
               "theta_pos": ("malleability", "positive"), "theta_neg": ("malleability", "negative")}


def analyze(pgf: pl.DataFrame, out_dir: Path, *, include_diagonal: bool = False, graph_threshold: float = 0.25,
            clique_min_pgf: float = 0.0, selection_threshold: float = 0.1, intervals: pl.DataFrame | None = None,
            accuracy: pl.DataFrame | None = None, setup: dict | None = None, persona_alpha: float = 0.05,
            persona_permutations: int = 1000, seed: int = 0, predicted: pl.DataFrame | None = None) -> dict:
    """Compute every finding for every model in `pgf`, write them to out_dir, return the analysis dict.

    The return value is the content of analysis.json plus `figures` (absolute paths: per model heatmap
    and graph; scores, comparison, report), `tables` (polars frames, also written to tables/*.csv) and
    `timings` (seconds for analysis, figures, report).

    pgf: model, source_task, target_task, seed, pgf (+ optional base_accuracy, accuracy).
    intervals: cell_intervals output (hatches cells whose interval contains 0, adds CIs to the advice).
    accuracy: base accuracies, model, target_task, accuracy (+ optional source_task: rows "none" are used).
    predicted: the cells of `pgf` that a partial grid did not run (model, source_task, target_task; completion
    predictions): outlined in the heatmaps, and analysis.json's "matrix" says "completed" instead of "observed".
    """
    out_dir = Path(out_dir)
    clock = time.perf_counter()
    timings: dict[str, float] = {}
    pgf = normalise_pgf(pgf, origin="pgf frame")
    if intervals is not None:
        needed = ("model", "source_task", "target_task", "ci_low", "ci_high")
        missing = [c for c in needed if c not in intervals.columns]
        if missing:
            raise ValueError(f"intervals frame lacks columns {missing}; expected transfer.stats.cell_intervals output")
    models = ordered_models(pgf)
    scores = transfer_scores(pgf, include_diagonal)
    per_model, per_level, per_granularity = averages(scores), averages(scores, "level"), averages(scores, "granularity")
    advice = selection_advice(pgf, selection_threshold, intervals)
    settings = {"include_diagonal": include_diagonal, "graph_threshold": graph_threshold,
                "clique_min_pgf": clique_min_pgf, "selection_threshold": selection_threshold,
                "persona_alpha": persona_alpha, "persona_permutations": persona_permutations, "seed": seed}
    work: dict[str, dict] = {}
    for model in models:
        tasks, mean = seed_mean_matrix(pgf, model)
        _, std = seed_std_matrix(pgf, model)
        _, seeds, _ = seed_cube(pgf, model)
        graph = transfer_graph(pgf, model, graph_threshold)
        cliques = model_cliques(pgf, model, clique_min_pgf)
        tests = persona_tests(pgf, model, include_diagonal, persona_permutations, persona_alpha, seed)
        edges = edge_table(graph).with_columns(pl.lit(model).alias("model"))
        model_scores = _with_seed_std(scores, model)
        work[model] = {"tasks": tasks, "mean": mean, "graph": graph, "scores": model_scores, "cliques": cliques,
                       "tests": tests, "edges": edges,
                       "entry": _model_entry(model, tasks, seeds, mean, std, model_scores, per_model, per_level,
                                             per_granularity, cliques, tests, edges, advice, graph_threshold)}
    cross = _cross_model(scores, per_model, models, seed)
    timings["analysis"] = time.perf_counter() - clock

    clock = time.perf_counter()
    figures: dict = {}
    for model, w in work.items():
        stem, folder = _file_stem(model), out_dir / "figures"
        mask = interval_mask(intervals, model, w["tasks"]) if intervals is not None else None
        figures[model] = {
            "heatmap": plot_heatmap(w["mean"], w["tasks"], f"{model}: PGF, source → target",
                                    out_dir / f"heatmap_{stem}.png", mask, predicted_mask(predicted, model,
                                                                                          w["tasks"])),
            "graph": plot_graph(w["graph"], f"{model}: transfer graph", folder / f"graph_{stem}.png"),
        }
        w["entry"]["figures"] = {k: str(path.relative_to(out_dir)) for k, path in figures[model].items()}
    figures["comparison"] = plot_model_comparison(per_model, per_level, out_dir / "figures" / "comparison.png")
    figures["scores"] = plot_scores(pl.concat([w["scores"] for w in work.values()]),
                                    "Transferability and malleability per task", out_dir / "figures" / "scores.png")
    timings["figures"] = time.perf_counter() - clock

    clock = time.perf_counter()
    tables = {"scores": scores, "averages": per_model, "averages_by_level": per_level,
              "averages_by_granularity": per_granularity,
              "cliques": pl.concat([clique_table(w["cliques"], m) for m, w in work.items()]),
              "personas": pl.concat([w["tests"] for w in work.values()]), "selection": advice,
              "edges": pl.concat([w["edges"] for w in work.values()]),
              "size_trend": cross.pop("_size_trend_table"), "level_tests": cross.pop("_level_table")}
    if intervals is not None:
        tables["intervals"] = intervals
    baseline = _baseline_accuracy(pgf, accuracy)
    if baseline is not None:
        tables["baseline_accuracy"] = baseline
    result = {"diagonal": "included" if include_diagonal else "excluded", "matrix": _matrix(predicted),
              "settings": settings,
              "models": {m: w["entry"] for m, w in work.items()}, "cross_model": cross,
              "figures": {"comparison": str(figures["comparison"].relative_to(out_dir)),
                          "scores": str(figures["scores"].relative_to(out_dir)), "report": "report.html"},
              "notes": _notes(include_diagonal) + (_PREDICTED_NOTE if predicted is not None else [])}
    for name, frame in tables.items():
        write_bytes(out_dir / "tables" / f"{name}.csv", frame.write_csv())
    write_bytes(out_dir / "analysis.json", json.dumps(_jsonable(result), indent=2))
    figures["report"] = write_report(result, tables, figures, out_dir / "report.html", setup=setup, baseline=baseline)
    timings["report"] = time.perf_counter() - clock
    return {**result, "figures": figures, "tables": tables, "timings": timings}


_PREDICTED_NOTE = [
    "Completed matrix: the cells a partial grid did not run are the completion's predictions "
    "(transfer.analysis.completion; reduce/completion.parquet holds their intervals), repeated in every seed: "
    "tests over seeds treat them as if run, so their p-values overstate confidence."]


def _matrix(predicted: pl.DataFrame | None) -> dict:
    """Which matrix the findings rest on: the observed cells only, or completed with predicted cells."""
    if predicted is None:
        return {"analysed": "observed", "predicted_cells": 0}
    return {"analysed": "completed", "predicted_cells": predicted.height}


def predicted_mask(predicted: pl.DataFrame | None, model: str, tasks: list[str]) -> np.ndarray | None:
    """T×T boolean mask of a model's predicted cells (None when nothing is predicted)."""
    if predicted is None:
        return None
    index = {t: i for i, t in enumerate(tasks)}
    mask = np.zeros((len(tasks), len(tasks)), dtype=bool)
    for source, target in predicted.filter(pl.col("model") == model).select("source_task", "target_task").iter_rows():
        if source in index and target in index:
            mask[index[source], index[target]] = True
    return mask


def _file_stem(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model)


def _with_seed_std(scores: pl.DataFrame, model: str) -> pl.DataFrame:
    """Seed-mean rows of one model with `<score>_std` = std over the per-seed scores."""
    rows = scores.filter(pl.col("model") == model)
    spread = (rows.filter(pl.col("seed") != SEED_MEAN).group_by("task")
              .agg(pl.col(*SCORE_COLUMNS).std(ddof=1).name.suffix("_std")))
    return rows.filter(pl.col("seed") == SEED_MEAN).join(spread, on="task", how="left", maintain_order="left")


def _model_entry(model, tasks, seeds, mean, std, model_scores, per_model, per_level, per_granularity, cliques,
                 tests, edges, advice, graph_threshold) -> dict:
    entry: dict = {"tasks": tasks, "seeds": seeds, "transferability": {}, "malleability": {}}
    for row in model_scores.iter_rows(named=True):
        for column, (group, key) in _SCORE_KEYS.items():
            if row[column] is not None:
                entry[group].setdefault(row["task"], {})[key] = row[column]
                entry[group][row["task"]][f"{key}_std"] = row[f"{column}_std"]
    overall = per_model.filter(pl.col("model") == model).row(0, named=True)
    for column, (group, key) in _SCORE_KEYS.items():
        entry[f"average_{key}_{group}"] = overall[column]
        entry[f"average_{key}_{group}_std"] = overall[f"{column}_std"]
    for name, frame, by in (("by_level", per_level, "level"), ("by_granularity", per_granularity, "granularity")):
        entry[name] = {r[by]: {c: r[c] for c in SCORE_COLUMNS}
                       for r in frame.filter(pl.col("model") == model).iter_rows(named=True)}
    entry["cliques"] = {sign: [c.tasks for c in group] for sign, group in cliques.items()}
    entry["clique_tests"] = {sign: [c.as_dict() for c in group] for sign, group in cliques.items()}
    entry["personas"] = assigned_personas(tests)
    entry["persona_tests"] = tests.filter(pl.col("top_quarter")).drop("model").to_dicts()
    entry["data_selection"] = advice_by_target(advice, model)
    entry["graph"] = {"threshold": graph_threshold, "edges": edges.drop("model").to_dicts()}
    entry["matrix"] = {"tasks": tasks, "mean": mean.tolist(), "std": std.tolist(),
                       "in_task": {t: mean[i, i] for i, t in enumerate(tasks)}}
    return entry


def _cross_model(scores: pl.DataFrame, per_model: pl.DataFrame, models: list[str], seed: int) -> dict:
    """Size trend (paired Wilcoxon over tasks), rank stability (Spearman), level effects (permutation)."""
    rng = np.random.default_rng(seed)
    on_mean = scores.filter(pl.col("seed") == SEED_MEAN)

    def vector(model: str, column: str) -> dict[str, float]:
        rows = on_mean.filter((pl.col("model") == model) & pl.col(column).is_not_null())
        return dict(zip(rows["task"].to_list(), rows[column].to_list()))

    trend = []
    for a, b in pairwise(models):
        for column in ("delta_pos", "theta_pos"):
            va, vb = vector(a, column), vector(b, column)
            common = [t for t in va if t in vb]
            diff = np.array([vb[t] - va[t] for t in common])
            w, p, n = wilcoxon_signed_rank(diff, "greater") if len(diff) else (0.0, 1.0, 0)
            trend.append({"smaller": a, "larger": b, "score": column,
                          "mean_difference": float(diff.mean()) if len(diff) else None,
                          "tasks_larger_higher": int((diff > 0).sum()), "n_tasks": len(common),
                          "wilcoxon_w": w, "p_value": p})
    stability = []
    for a, b in combinations(models, 2):
        for column in ("delta_pos", "theta_pos"):
            va, vb = vector(a, column), vector(b, column)
            common = [t for t in va if t in vb]
            rho = spearman([va[t] for t in common], [vb[t] for t in common]) if len(common) >= 2 else float("nan")
            stability.append({"model_a": a, "model_b": b, "score": column, "spearman": rho, "n_tasks": len(common)})
    level_rows = []
    for model in models:
        rows = on_mean.filter((pl.col("model") == model) & pl.col("delta_pos").is_not_null())
        for level in rows["level"].unique(maintain_order=True).to_list():
            group = rows.filter(pl.col("level") == level)["delta_pos"].to_numpy()
            rest = rows.filter(pl.col("level") != level)["delta_pos"].to_numpy()
            if len(group) and len(rest):
                diff, p = permutation_test(group, rest, "greater", 5000, rng)
                level_rows.append({"model": model, "level": level, "n_sources": len(group),
                                   "mean_delta_pos": float(group.mean()), "difference_vs_rest": diff, "p_value": p})
    average = dict(zip(per_model["model"].to_list(), per_model["delta_pos"].to_list()))
    trend_schema = {"smaller": pl.String, "larger": pl.String, "score": pl.String, "mean_difference": pl.Float64,
                    "tasks_larger_higher": pl.Int64, "n_tasks": pl.Int64, "wilcoxon_w": pl.Float64,
                    "p_value": pl.Float64}
    level_schema = {"model": pl.String, "level": pl.String, "n_sources": pl.Int64, "mean_delta_pos": pl.Float64,
                    "difference_vs_rest": pl.Float64, "p_value": pl.Float64}
    return {"models": models, "average_positive_transferability": average,
            "average_positive_malleability": dict(zip(per_model["model"].to_list(), per_model["theta_pos"].to_list())),
            "size_trend": trend, "rank_stability": stability, "level_tests": level_rows,
            "_size_trend_table": pl.DataFrame(trend, schema=trend_schema),
            "_level_table": pl.DataFrame(level_rows, schema=level_schema)}


def _baseline_accuracy(pgf: pl.DataFrame, accuracy: pl.DataFrame | None) -> pl.DataFrame | None:
    """Base accuracy per model and target (mean over base seeds), from `accuracy` or pgf's base_accuracy."""
    if accuracy is not None:
        missing = [c for c in ("model", "target_task", "accuracy") if c not in accuracy.columns]
        if missing:
            raise ValueError(f"accuracy frame lacks columns {missing}; expected model, target_task, accuracy")
        if "source_task" in accuracy.columns:
            accuracy = base_rows(accuracy) if "seed" in accuracy.columns else accuracy.filter(
                pl.col("source_task") == BASELINE)
        frame = accuracy.group_by("model", "target_task").agg(pl.col("accuracy").mean())
    elif "base_accuracy" in pgf.columns:
        frame = pgf.group_by("model", "target_task").agg(pl.col("base_accuracy").mean().alias("accuracy"))
    else:
        return None
    return frame.sort("model", "target_task")


def _notes(include_diagonal: bool) -> list[str]:
    diagonal = ("included: N = number of target tasks" if include_diagonal else
                "excluded (default): N = number of other tasks; the in-task PGF is reported separately")
    return [
        f"Diagonal μ(i→i) in Δ/Θ sums: {diagonal}.",
        "Δ/Θ and averages are computed on the seed-mean matrix; *_std is the std over the per-seed values.",
        "Cliques: edge {i,j} when seed-mean μ(i→j) and μ(j→i) are both > min_pgf (or both < −min_pgf); maximal "
        "cliques of ≥3 tasks (pairs only when no triangle exists), largest first; one-sided Wilcoxon signed-rank "
        "over the per-seed PGFs of all ordered pairs (p_value; reruns are not independent, so it overstates "
        "confidence) and over the seed-mean PGF of each ordered pair (p_value_pairs).",
        "Personas: top quarter of the score (⌈n/4⌉) with the score's sign AND one-sided max-T permutation p < alpha; "
        "null: sources exchangeable within each (seed, target) (targets within each (seed, source) for Θ); the "
        "max over tasks accounts for selecting top scorers. Tests across 4 seeds alone cannot reach p < 0.0625.",
        "Size trend: one-sided Wilcoxon signed-rank over tasks of the paired differences between consecutive models "
        "(ordered by the parameter count in the name).",
    ]


def _jsonable(value):
    """NaN/inf → None and numpy scalars → Python, recursively, so the JSON is strict."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value
