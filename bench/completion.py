"""Benchmark of partial-grid completion (transfer.analysis.completion) on complete PGF tables.

    .venv/bin/python bench/completion.py [--sweep outputs/<sweep>] [--repeats 20] [--fractions 0.25 0.5 0.75]

Each dataset is a sweep whose every cell was run: the paper's three released Qwen2.5-VL tables (one
3-model sweep) and, with --sweep, the sweep's reduce/pgf.parquet. For each fraction, each repeat keeps a
random subset of the sources of every model (all seeds; subsets drawn independently per model, at least
two), completes the rest with each method and compares with the full table:

- hidden cells: RMSE and Pearson r off the diagonal (pooled over repeats), RMSE on the diagonal;
  coverage and mean width of the intervals over all hidden cells;
- findings: how often the completed sweep has the same maximum positive / negative cliques and the same
  assigned personas (all four sets; persona_j: mean Jaccard index over the four), and the share of
  targets with the same top-3 donors (selection advice), each computed with the project's functions (as
  transfer.analysis.analyze calls them) on completed_pgf; "observed only" analyses the partial grid as is.

A second table hides seeds instead of sources (every source keeps a random 1..S−1 of its S seeds) and
reports the coverage and width of the seed-noise intervals of those observed cells. A third starts from a
quarter of the sources and adds single-seed runs one at a time, chosen by next_cells or at random (any
run not done, or one seed of a source not run), and reports the error and interval width of the completed
matrices (all cells) after them.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import polars as pl

from transfer.analysis.cliques import model_cliques
from transfer.analysis.completion import DEFAULT_METHOD, METHODS, complete, completed_pgf, next_cells
from transfer.analysis.personas import assigned_personas, persona_tests
from transfer.analysis.selection import selection_advice
from transfer.analysis.tables import ordered_models, read_pgf_table

ROOT = Path(__file__).resolve().parents[1]
PAPER = sorted((ROOT / "docs" / "paper_pgf").glob("pgf_qwen2.5vl-*-instruct.csv"))
KEY = ["model", "source_task", "target_task"]
OBSERVED_ONLY = "observed only"   # the analysis of the partial grid as it is, without completion


def findings(pgf: pl.DataFrame, permutations: int) -> dict[str, dict]:
    """Per model: maximum cliques per sign, assigned personas, top-3 donors per target."""
    advice = selection_advice(pgf).filter(pl.col("rank") <= 3)
    out = {}
    for model in ordered_models(pgf):
        cliques = model_cliques(pgf, model)
        personas = assigned_personas(persona_tests(pgf, model, n_perm=permutations))
        top = advice.filter(pl.col("model") == model).group_by("target_task").agg(pl.col("source_task"))
        out[model] = {"positive": {frozenset(c.tasks) for c in cliques["positive"] if c.maximum},
                      "negative": {frozenset(c.tasks) for c in cliques["negative"] if c.maximum},
                      "personas": {p: set(v) for p, v in personas.items()},
                      "donors": dict(zip(top["target_task"], map(set, top["source_task"])))}
    return out


def agreement(found: dict, reference: dict, targets: list[str]) -> dict[str, float]:
    """1/0 for the same maximum cliques and the same personas, the mean persona Jaccard index, and the share
    of targets with the same top-3 donors."""
    return {"clique+": float(found["positive"] == reference["positive"]),
            "clique-": float(found["negative"] == reference["negative"]),
            "personas": float(found["personas"] == reference["personas"]),
            "persona_j": float(np.mean([_jaccard(found["personas"][p], reference["personas"][p])
                                        for p in reference["personas"]])),
            "donors": float(np.mean([found["donors"].get(t, set()) == reference["donors"].get(t, set())
                                     for t in targets]))}


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def hide_sources(full: pl.DataFrame, fraction: float, rng: np.random.Generator) -> pl.DataFrame:
    kept = []
    for model in ordered_models(full):
        sources = sorted(full.filter(pl.col("model") == model)["source_task"].unique().to_list())
        n = min(len(sources) - 1, max(2, round(fraction * len(sources))))
        kept += [(model, s) for s in rng.choice(sources, n, replace=False)]
    return full.join(pl.DataFrame(kept, schema=["model", "source_task"], orient="row"), on=["model", "source_task"])


def source_rows(full: pl.DataFrame, truth: pl.DataFrame, reference: dict, fractions: list[float], repeats: int,
                permutations: int, rng: np.random.Generator) -> list[dict]:
    targets = sorted(full["target_task"].unique().to_list())
    collected: dict[tuple, dict[str, list]] = {}
    for fraction in fractions:
        for _ in range(repeats):
            observed = hide_sources(full, fraction, rng)
            for method in (OBSERVED_ONLY, *METHODS):
                if method == OBSERVED_ONLY:
                    hidden, found = None, findings(observed, permutations)
                else:
                    done = complete(observed, method=method)
                    hidden = done.filter(~pl.col("observed")).join(truth, on=KEY)
                    found = findings(completed_pgf(observed, done), permutations)
                for model in ordered_models(full):
                    slot = collected.setdefault((model, fraction, method), {"cells": [], "agree": []})
                    if hidden is not None:
                        slot["cells"].append(hidden.filter(pl.col("model") == model))
                    slot["agree"].append(agreement(found[model], reference[model], targets))
    return [{"model": model, "fraction": fraction, "method": method, **cell_metrics(slot["cells"]),
             **{k: float(np.mean([a[k] for a in slot["agree"]])) for k in slot["agree"][0]}}
            for (model, fraction, method), slot in sorted(collected.items(), key=_row_order(full))]


def _row_order(full: pl.DataFrame):
    models = ordered_models(full)
    methods = [OBSERVED_ONLY, *METHODS]
    return lambda item: (models.index(item[0][0]), item[0][1], methods.index(item[0][2]))


def cell_metrics(parts: list[pl.DataFrame]) -> dict[str, float | None]:
    """Errors and interval coverage of the hidden cells (None for the observed-only analysis)."""
    if not parts:
        return dict.fromkeys(("rmse_off", "r_off", "rmse_diag", "coverage", "cov_diag", "width"))
    cells = pl.concat(parts)
    off = cells.filter(pl.col("source_task") != pl.col("target_task"))
    diag = cells.filter(pl.col("source_task") == pl.col("target_task"))
    inside = (cells["truth"] >= cells["ci_low"]) & (cells["truth"] <= cells["ci_high"])
    return {"rmse_off": _rmse(off), "r_off": float(np.corrcoef(off["pgf"], off["truth"])[0, 1]),
            "rmse_diag": _rmse(diag), "coverage": float(inside.mean()),
            "cov_diag": float(((diag["truth"] >= diag["ci_low"]) & (diag["truth"] <= diag["ci_high"])).mean()),
            "width": float((cells["ci_high"] - cells["ci_low"]).mean())}


def seed_rows(full: pl.DataFrame, truth: pl.DataFrame, repeats: int, level: float,
              rng: np.random.Generator) -> list[dict]:
    """Every source keeps 1..S−1 random seeds; coverage of the observed cells' seed-noise intervals."""
    runs = full.select("model", "source_task", "seed").unique().sort("model", "source_task", "seed")
    frames = []
    for _ in range(repeats):
        keep = []
        for (model, source), group in runs.group_by("model", "source_task", maintain_order=True):
            seeds = group["seed"].to_list()
            keep += [(model, source, s) for s in rng.choice(seeds, rng.integers(1, len(seeds)), replace=False)]
        observed = full.join(pl.DataFrame(keep, schema=["model", "source_task", "seed"], orient="row"),
                             on=["model", "source_task", "seed"])
        frames.append(complete(observed, level=level).join(truth, on=KEY))
    cells = pl.concat(frames)
    inside = (pl.col("truth") >= pl.col("ci_low")) & (pl.col("truth") <= pl.col("ci_high"))
    return (cells.group_by("model", "n_seeds")
            .agg(pl.len().alias("cells"), inside.mean().alias("coverage"),
                 (pl.col("ci_high") - pl.col("ci_low")).mean().alias("width"))
            .sort(pl.col("model").replace_strict({m: i for i, m in enumerate(ordered_models(full))}), "n_seeds")
            .to_dicts())


def order_rows(full: pl.DataFrame, truth: pl.DataFrame, repeats: int, steps: int,
               rng: np.random.Generator) -> list[dict]:
    """From a quarter of the sources, run `steps` more single-seed runs chosen by next_cells, at random among
    the runs not done, or at random among the sources not run; RMSE of the completed matrices (all cells)
    and mean interval width afterwards."""
    runs = full.select("model", "source_task", "seed").unique().sort("model", "source_task", "seed")
    results: dict[str, list[tuple[float, float]]] = {"next_cells": [], "random run": [], "random source": []}
    added: dict[str, list[str]] = {order: [] for order in results}
    for _ in range(repeats):
        start = hide_sources(full, 0.25, rng).select("model", "source_task", "seed").unique()
        for order in results:
            done = start
            for _ in range(steps):
                observed = full.join(done, on=["model", "source_task", "seed"])
                if order == "next_cells":
                    pick = next_cells(observed).row(0, named=True)
                    run = pl.DataFrame([pick]).select("model", "source_task", "seed")
                else:
                    left = runs.join(done, on=["model", "source_task", "seed"], how="anti")
                    if order == "random source":              # one seed of a source not run in its model
                        left = left.join(done, on=["model", "source_task"], how="anti")
                    run = left[int(rng.integers(left.height))]
                done = pl.concat([done, run])
                added[order].append(run["model"][0])
            cells = complete(full.join(done, on=["model", "source_task", "seed"])).join(truth, on=KEY)
            results[order].append((_rmse(cells), float((cells["ci_high"] - cells["ci_low"]).mean())))
    models = ordered_models(full)
    return [{"order": order, "runs added": steps, "rmse_all": float(np.mean([r for r, _ in values])),
             "width_all": float(np.mean([w for _, w in values])),
             "runs per model": ", ".join(f"{added[order].count(m) / repeats:.1f}" for m in models)}
            for order, values in results.items()]


def _rmse(cells: pl.DataFrame) -> float:
    return float(np.sqrt(((cells["pgf"] - cells["truth"]) ** 2).mean()))


def print_table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    columns = list(rows[0])
    print("| " + " | ".join(columns) + " |")
    print("|" + "|".join("---" for _ in columns) + "|")
    for row in rows:
        print("| " + " | ".join(_cell(v) for v in row.values()) + " |")


def _cell(value) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def bench(name: str, full: pl.DataFrame, args: argparse.Namespace) -> None:
    rng = np.random.default_rng(args.seed)
    clock = time.perf_counter()
    truth = full.group_by(KEY).agg(pl.col("pgf").mean().alias("truth"))
    reference = findings(full, args.permutations)
    rows = source_rows(full, truth, reference, args.fractions, args.repeats, args.permutations, rng)
    print_table(f"{name}: sources hidden ({args.repeats} repeats, level 0.9)", rows)
    if full["seed"].n_unique() > 1:
        print_table(f"{name}: seeds hidden ({args.repeats} repeats, level 0.9)",
                    seed_rows(full, truth, args.repeats, 0.9, rng))
    print_table(f"{name}: adaptive order ({DEFAULT_METHOD}, {args.repeats} repeats from 0.25 of the sources)",
                order_rows(full, truth, args.repeats, args.steps, rng))
    print(f"({name}: {time.perf_counter() - clock:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", type=Path, help="a finished sweep folder with reduce/pgf.parquet")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.25, 0.5, 0.75])
    parser.add_argument("--permutations", type=int, default=1000, help="persona test permutations")
    parser.add_argument("--steps", type=int, default=12, help="runs added in the adaptive-order table")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    bench("paper tables", pl.concat([read_pgf_table(f) for f in PAPER]), args)
    if args.sweep is not None:
        table = args.sweep / "reduce" / "pgf.parquet"
        if not table.exists():
            raise SystemExit(f"no {table}; the sweep has not been reduced yet")
        bench(f"sweep {args.sweep.name}", read_pgf_table(table), args)


if __name__ == "__main__":
    main()
