"""report.html: one self-contained page (images inlined as base64 PNG, inline CSS, no external assets)."""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import polars as pl

from transfer.atomic import write_bytes
from transfer.tasks import TASKS

SECTIONS = ["Findings", "Setup", "Baseline accuracies", "PGF matrices", "Transferability and malleability",
            "Transfer graphs", "Cliques", "Personas", "Data-selection advice", "Methods and statistics"]

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0 auto;max-width:1200px;
padding:1.5em;color:#222;line-height:1.45}
h1{margin-bottom:.2em} h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em} h3{margin-bottom:.3em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.85em} th,td{border:1px solid #ccc;padding:.25em .5em;
text-align:right} th{background:#f3f3f3} td.l,th.l{text-align:left} img{max-width:100%;height:auto;display:block;
margin:.5em 0} .muted{color:#666;font-size:.9em} nav a{margin-right:1em} .pos{color:#2166ac} .neg{color:#b2182b}
ul.findings li{margin:.25em 0} code{background:#f5f5f5;padding:0 .2em}
"""


def escape(value) -> str:
    return html.escape(str(value))


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:
            return "–"
        if 0 < abs(value) < 10 ** -digits:
            return f"{value:.1e}"
        return f"{value:.{digits}f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_short(v) for v in value)
    return str(value)


def _short(task) -> str:
    return TASKS[task].abbrev if task in TASKS else str(task)


def html_table(rows: list[dict], columns: list[str], headers: list[str] | None = None, left: int = 1) -> str:
    """An HTML table; the first `left` columns are left-aligned."""
    if not rows:
        return '<p class="muted">none</p>'
    head = "".join(f'<th class="{"l" if k < left else ""}">{escape(h)}</th>' for k, h in enumerate(headers or columns))
    body = "".join("<tr>" + "".join(f'<td class="{"l" if k < left else ""}">{escape(_fmt(r.get(c)))}</td>'
                                    for k, c in enumerate(columns)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_image(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def _p(value: float) -> str:
    return _fmt(value, 3) if value >= 1e-3 else f"{value:.1e}"


def _findings(result: dict) -> str:
    items = []
    cross = result["cross_model"]
    average = cross["average_positive_transferability"]
    if average:
        order = ", ".join(f"{escape(m)} {v:.3f}" for m, v in average.items())
        items.append(f"Average positive transferability (Δ⁺ averaged over sources; models by size): {order}.")
    for row in cross["size_trend"]:
        if row["score"] == "delta_pos" and row["n_tasks"]:
            items.append(f"{escape(row['larger'])} vs {escape(row['smaller'])}: Δ⁺ higher on "
                         f"{row['tasks_larger_higher']}/{row['n_tasks']} source tasks, "
                         f"mean difference {row['mean_difference']:+.3f} "
                         f"(one-sided Wilcoxon signed-rank over tasks, p = {_p(row['p_value'])}).")
    for model, entry in result["models"].items():
        parts = []
        for sign in ("positive", "negative"):
            tests = entry["clique_tests"][sign]
            if tests:
                best = tests[0]
                parts.append(f"largest {sign} clique {len(best['tasks'])} tasks ({escape(_fmt(best['tasks']))}; "
                             f"Wilcoxon p = {_p(best['p_value'])})")
            else:
                parts.append(f"no {sign} clique")
        personas = "; ".join(f"{name}: {escape(_fmt(tasks)) or '–'}" for name, tasks in entry["personas"].items())
        harmful_diagonal = [t for t, v in entry["matrix"]["in_task"].items() if v is not None and v == v and v < 0]
        diagonal = (f"; in-task finetuning hurts on {escape(_fmt(harmful_diagonal))}" if harmful_diagonal else "")
        items.append(f"<b>{escape(model)}</b>: {', '.join(parts)}. Personas — {personas}{diagonal}.")
    for row in cross["level_tests"]:
        if row["p_value"] < 0.05:
            items.append(f"{escape(row['model'])}: {row['level']}-level sources transfer more than the rest "
                         f"(mean Δ⁺ {row['mean_delta_pos']:.3f}, +{row['difference_vs_rest']:.3f} vs rest, "
                         f"permutation p = {_p(row['p_value'])}).")
    return '<ul class="findings">' + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _setup(setup: dict | None, result: dict) -> str:
    rows = [{"key": k, "value": v if isinstance(v, (str, int, float, bool)) else json.dumps(v, default=str)}
            for k, v in (setup or {}).items()]
    rows += [{"key": f"analysis.{k}", "value": v} for k, v in result["settings"].items()]
    rows.append({"key": "analysis.diagonal", "value": result["diagonal"]})
    return html_table(rows, ["key", "value"], left=2)


def _baseline(baseline: pl.DataFrame | None) -> str:
    if baseline is None or baseline.height == 0:
        return '<p class="muted">No baseline accuracies were given.</p>'
    wide = baseline.pivot(on="target_task", index="model", values="accuracy")
    tasks = [t for t in TASKS if t in wide.columns]
    rows = wide.select("model", *tasks).to_dicts()
    return html_table(rows, ["model", *tasks], ["model", *[_short(t) for t in tasks]])


def _matrices(result: dict, figures: dict, has_intervals: bool) -> str:
    note = ("Cells whose bootstrap interval contains 0 are greyed and hatched." if has_intervals else
            "No per-question predictions were given, so cells carry no intervals (std over seeds is in analysis.json).")
    parts = [f'<p class="muted">Rows: source task finetuned on; columns: target task evaluated; seed-mean PGF; the '
             f'in-task diagonal is outlined. {note} {_matrix_sentence(result)}</p>']
    for model in result["models"]:
        parts.append(f"<h3>{escape(model)}</h3>{html_image(figures[model]['heatmap'], f'heatmap {model}')}")
    return "".join(parts)


def _matrix_sentence(result: dict) -> str:
    """Which matrix the findings rest on (a partial grid is analysed observed-only or completed)."""
    matrix = result["matrix"]
    if matrix["analysed"] == "completed":
        return (f"The findings rest on the completed matrix: {matrix['predicted_cells']} cells were not run and are "
                "the completion's predictions (dashed outline; intervals in reduce/completion.parquet).")
    return "The findings rest on the observed cells only."


def _scores(result: dict, figures: dict, tables: dict) -> str:
    parts = ['<p class="muted">Δ⁺/Δ⁻: positive/negative transferability of a source; Θ⁺/Θ⁻: positive/negative '
             'malleability of a target; ± is the std over seeds.</p>',
             html_image(figures["comparison"], "cross-model comparison"),
             html_image(figures["scores"], "scores per task")]
    columns = ["model", "delta_pos", "delta_pos_std", "delta_neg", "theta_pos", "theta_neg"]
    parts.append(html_table(tables["averages"].to_dicts(), columns,
                        ["model", "avg Δ⁺", "± seeds", "avg Δ⁻", "avg Θ⁺", "avg Θ⁻"]))
    parts.append("<h3>By perceptual level of the task</h3>")
    parts.append(html_table(tables["averages_by_level"].to_dicts(), ["model", "level", *columns[1:]],
                        ["model", "level", "avg Δ⁺", "± seeds", "avg Δ⁻", "avg Θ⁺", "avg Θ⁻"], left=2))
    parts.append(html_table(tables["level_tests"].to_dicts(),
                        ["model", "level", "n_sources", "mean_delta_pos", "difference_vs_rest", "p_value"],
                        ["model", "level", "sources", "mean Δ⁺", "Δ⁺ − rest", "permutation p"], left=2))
    parts.append("<h3>By granularity</h3>")
    parts.append(html_table(tables["averages_by_granularity"].to_dicts(), ["model", "granularity", *columns[1:]],
                        ["model", "granularity", "avg Δ⁺", "± seeds", "avg Δ⁻", "avg Θ⁺", "avg Θ⁻"], left=2))
    parts.append("<h3>Size trend and stability across models</h3>")
    parts.append(html_table(result["cross_model"]["size_trend"],
                        ["smaller", "larger", "score", "mean_difference", "tasks_larger_higher", "n_tasks", "p_value"],
                        ["smaller", "larger", "score", "mean diff.", "tasks higher", "tasks", "Wilcoxon p"], left=3))
    parts.append(html_table(result["cross_model"]["rank_stability"],
                            ["model_a", "model_b", "score", "spearman", "n_tasks"],
                        ["model A", "model B", "score", "Spearman ρ", "tasks"], left=3))
    for model, entry in result["models"].items():
        rows = [{"task": t, "dp": entry["transferability"].get(t, {}).get("positive"),
                 "dn": entry["transferability"].get(t, {}).get("negative"),
                 "tp": entry["malleability"].get(t, {}).get("positive"),
                 "tn": entry["malleability"].get(t, {}).get("negative"), "diag": entry["matrix"]["in_task"].get(t)}
                for t in entry["tasks"]]
        parts.append(f"<h3>{escape(model)}</h3>")
        parts.append(html_table(rows, ["task", "dp", "dn", "tp", "tn", "diag"],
                            ["task", "Δ⁺", "Δ⁻", "Θ⁺", "Θ⁻", "in-task PGF"]))
    return "".join(parts)


def _graphs(result: dict, figures: dict) -> str:
    parts = [f'<p class="muted">Directed edge i→j when |seed-mean PGF| ≥ {result["settings"]["graph_threshold"]:g}; '
             'blue helps, red hurts; node colour = perceptual level.</p>']
    for model, entry in result["models"].items():
        edges = entry["graph"]["edges"]
        positive = sum(e["weight"] > 0 for e in edges)
        parts.append(f"<h3>{escape(model)}</h3><p>{len(edges)} edges: {positive} positive, {len(edges) - positive} "
                     f"negative.</p>{html_image(figures[model]['graph'], f'transfer graph {model}')}")
    return "".join(parts)


def _cliques(result: dict) -> str:
    parts = [f'<p class="muted">Edge {{i, j}} when the seed-mean PGF is &gt; {result["settings"]["clique_min_pgf"]:g} '
             'in both directions (&lt; −min for negative cliques); maximal cliques, largest first. p: one-sided '
             'Wilcoxon signed-rank over the per-seed PGFs of all ordered pairs of the clique (reruns are not '
             'independent draws, so this p overstates confidence); p (pair means): the same test on the seed-mean '
             'PGF of each ordered pair; seed consistency: share of per-seed values with the clique\'s sign.</p>']
    for model, entry in result["models"].items():
        rows = [{**c, "size": len(c["tasks"])}
                for sign in ("positive", "negative") for c in entry["clique_tests"][sign]]
        parts.append(f"<h3>{escape(model)}</h3>")
        parts.append(html_table(rows, ["sign", "size", "tasks", "mean_pgf", "weakest_pgf", "seed_consistency",
                                       "n_values", "p_value", "p_value_pairs"],
                            ["sign", "size", "tasks", "mean PGF", "weakest pair", "seed consistency", "n",
                             "Wilcoxon p (seeds)", "Wilcoxon p (pair means)"], left=3))
    return "".join(parts)


def _personas(result: dict) -> str:
    alpha = result["settings"]["persona_alpha"]
    parts = ['<p class="muted">Donor: high Δ⁺; Pirate: most negative Δ⁻; Sponge: high Θ⁺; Sieve: most negative Θ⁻. '
             'Rule: among the top quarter of tasks by the score (⌈n/4⌉, with the score\'s sign) AND a one-sided '
             f'permutation test p &lt; {alpha:g}, max-T adjusted: each permutation shuffles every target\'s PGFs '
             'among its sources per seed (for Θ, every source\'s PGFs among its targets) and keeps the most extreme '
             'task score; p is the share of permutations whose most extreme score reaches the task\'s. This accounts '
             'for picking top scorers, so structureless data yields a persona with probability ≤ alpha. All '
             'top-quarter candidates are listed.</p>']
    for model, entry in result["models"].items():
        rows = [{**r, "assigned": r["assigned"]} for r in entry["persona_tests"]]
        parts.append(f"<h3>{escape(model)}</h3>")
        columns = ["persona", "task", "score", "rank", "n_ranked", "p_value", "p_unadjusted", "assigned"]
        headers = ["persona", "task", "score", "rank", "of", "p (max-T)", "p (unadjusted)", "assigned"]
        parts.append(html_table(rows, columns, headers, left=2))
    return "".join(parts)


def _advice(result: dict) -> str:
    threshold = result["settings"]["selection_threshold"]
    parts = [f'<p class="muted">For a target with little data: the other tasks whose seed-mean PGF toward it exceeds '
             f'{threshold:g}, best first (seeds&gt;0 counts runs with a gain; CI from the paired bootstrap when '
             'predictions were given).</p>']
    for model, entry in result["models"].items():
        rows = [{"target": target, "sources": ", ".join(
            f"{_short(s['source'])} {s['pgf']:.2f} ({s['seeds_positive']}/{s['n_seeds']}"
            + (f", CI {s['ci_low']:.2f}…{s['ci_high']:.2f}" if s["ci_low"] is not None else "") + ")" for s in sources)}
                for target, sources in entry["data_selection"].items()]
        table = html_table(rows, ["target", "sources"], ["target", "sources (PGF, seeds>0)"], left=2)
        parts.append(f"<h3>{escape(model)}</h3>{table}")
    return "".join(parts)


def _methods(result: dict) -> str:
    formula = ("<p>PGF μ(i→j) = (Acc(M(T<sub>i</sub>), T<sub>j</sub>) − Acc(M, T<sub>j</sub>)) / "
               "(1 − Acc(M, T<sub>j</sub>)); "
               "Δ⁺(i) = (1 − e<sup>−p/N</sup>)/p · Σ<sub>j</sub> μ(i→j)·1[μ(i→j) &gt; 0], Δ⁻ likewise over the n "
               "negative entries; Θ± the same over the sources hitting a target.</p>")
    notes = "".join(f"<li>{escape(n)}</li>" for n in result["notes"])
    return f"{formula}<ul>{notes}</ul>"


def write_report(result: dict, tables: dict, figures: dict, path: str | Path, setup: dict | None = None,
                 baseline: pl.DataFrame | None = None) -> Path:
    """Render the analysis (dict from analyze, its tables and figure paths) as one offline HTML page."""
    has_intervals = "intervals" in tables
    bodies = [_findings(result), _setup(setup, result), _baseline(baseline), _matrices(result, figures, has_intervals),
              _scores(result, figures, tables), _graphs(result, figures), _cliques(result), _personas(result),
              _advice(result), _methods(result)]
    anchors = [s.lower().replace(" ", "-") for s in SECTIONS]
    nav = "".join(f'<a href="#{a}">{escape(s)}</a>' for s, a in zip(SECTIONS, anchors))
    sections = "".join(f'<section id="{a}"><h2>{escape(s)}</h2>{b}</section>'
                       for s, a, b in zip(SECTIONS, anchors, bodies))
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Task transfer report</title>'
            f"<style>{CSS}</style></head><body><h1>Task transfer report</h1>"
            f'<p class="muted">Models: {escape(", ".join(result["models"]))}. Diagonal in Δ/Θ: {result["diagonal"]}. '
            f'{_matrix_sentence(result)}</p>'
            f"<nav>{nav}</nav>{sections}</body></html>")
    return write_bytes(path, page)
