"""The W&B dashboard of a sweep: a workspace and a report, built from the sweep's records on disk.

    python -m transfer.dashboard [sweep=NAME] [outputs=DIR] [project=transfer] [entity=TEAM]

`build_spec` is a pure function of the records (every cell's scores.parquet, reduce/analysis.json,
reduce/missing.parquet) returning a JSON-able spec; the CLI writes it to outputs/<sweep>/reduce/dashboard.json
and saves the workspace and the report to W&B when logged in and online (`pip install .[dashboard]`).
Panels refer to the keys the runs log (transfer.tracking): cell runs (job_type cell, config model, source_task,
seed, ...; history train/*; summary eval/*, pgf/*, dacc/*, status) and the sweep's reduce run (tables, figures).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import polars as pl

from transfer.records import failed_cells, read_sweep
from transfer.tasks import BASELINE, TASK_NAMES, TASKS
from transfer.tracking import command_options, has_credentials

VERSION = 1
SPEC_NAME = "dashboard.json"
PERSONAS = {"donor": "lifts other tasks", "pirate": "hurts other tasks", "sponge": "gains from other tasks",
            "sieve": "is hurt by other tasks"}
TRAIN_METRICS = {"train/loss": "training loss", "train/learning_rate": "learning rate",
                 "train/grad_norm": "gradient norm", "train/step_time": "step time (s)"}
SIZES = {"bar": (8, 6), "line": (8, 6), "scalar": (6, 4), "parallel": (24, 8), "run_comparer": (12, 10),
         "markdown": (12, 10), "media": (12, 10), "table": (12, 10)}
GRID_WIDTH = 24
MEAN_STD = {"agg": "mean", "range": "stddev"}   # W&B groups: mean over the seeds, shaded/whiskered ± std


# ---------------------------------------------------------------- the spec (pure)

def build_spec(sweep_dir: Path, *, entity: str | None, project: str) -> dict:
    """The workspace and report spec of `sweep_dir`, from its records only (deterministic, JSON-able)."""
    sweep_dir = Path(sweep_dir)
    scores = read_sweep(sweep_dir)
    if scores.is_empty():
        raise FileNotFoundError(f"no finished cells under {sweep_dir / 'cells'}; nothing to show")
    grid = _grid(scores, _holes(sweep_dir, scores))
    analysis = _read_json(sweep_dir / "reduce" / "analysis.json")
    sweep = sweep_dir.name
    return {"version": VERSION, "sweep": sweep, "entity": entity, "project": project, "grid": grid,
            "workspace": _workspace(sweep, grid, analysis), "report": _report(sweep, grid, analysis)}


def _holes(sweep_dir: Path, scores: pl.DataFrame) -> pl.DataFrame:
    """reduce/missing.parquet, or the same frame computed from the cells when the reducer has not run yet."""
    path = sweep_dir / "reduce" / "missing.parquet"
    if path.exists():
        return pl.read_parquet(path)
    from transfer.reduce import missing_cells

    return missing_cells(scores, failed_cells(sweep_dir))


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _in_order(values, order: list[str]) -> list[str]:
    """`values` in `order`, then any others sorted."""
    values = set(values)
    return [v for v in order if v in values] + sorted(values - set(order))


def _grid(scores: pl.DataFrame, holes: pl.DataFrame) -> dict:
    """Models, sources, seeds and targets of the sweep, and per model its done count, failed and missing cells."""
    done = scores.select("model", "source_task", "seed").unique()
    failed, missing = (holes.filter(pl.col("status") == status) for status in ("failed", "missing"))

    def cells(frame: pl.DataFrame, model: str) -> list[str]:
        rows = frame.filter(pl.col("model") == model).sort("source_task", "seed")
        return [f"{source}/seed={seed}" for source, seed in rows.select("source_task", "seed").iter_rows()]

    status = {m: {"done": done.filter(pl.col("model") == m).height, "failed": cells(failed, m),
                  "missing": cells(missing, m)} for m in sorted(set(done["model"]) | set(holes["model"]))}
    return {"models": list(status), "sources": _in_order(done["source_task"], [BASELINE, *TASK_NAMES]),
            "seeds": sorted(done["seed"].unique().to_list()), "targets": _in_order(scores["target_task"], TASK_NAMES),
            "cells": status, "runs": done.height + failed.height + 1}   # W&B runs: cells, failed cells, reduce


# ---------------------------------------------------------------- runsets and panels

def _runset(sweep: str, name: str, *, job_type: str | None = None, model: str | None = None,
            groupby: tuple[str, ...] = ()) -> dict:
    """Runs of the sweep's W&B group, optionally of one job type and model (W&B's filter expressions)."""
    terms = [f"Metric('Group') == {sweep!r}"]
    if job_type:
        terms.append(f"Metric('JobType') == {job_type!r}")
    if model:
        terms.append(f"Config('model') == {model!r}")
    return {"name": name, "filters": " and ".join(terms), "groupby": list(groupby)}


def _bar(metric: str, title: str, limit: int, groupby: str | None) -> dict:
    return {"type": "bar", "title": title, "metrics": [metric], "groupby": groupby, "limit": limit, **MEAN_STD}


def _line(metric: str, title: str, limit: int) -> dict:
    return {"type": "line", "title": title, "x": "train/global_step", "y": [metric], "groupby": "config.model",
            "limit": limit, **MEAN_STD}


def _scalar(metric: str, title: str) -> dict:
    return {"type": "scalar", "title": title, "metric": metric, **MEAN_STD}


def _place(panels: list[dict]) -> list[dict]:
    """Give each panel a layout: left to right, rows of GRID_WIDTH units, in list order."""
    placed, x, y, row = [], 0, 0, 0
    for panel in panels:
        w, h = SIZES[panel["type"]]
        if x + w > GRID_WIDTH:
            x, y, row = 0, y + row, 0
        placed.append({**panel, "layout": {"x": x, "y": y, "w": w, "h": h}})
        x, row = x + w, max(row, h)
    return placed


def _chance(target: str) -> str:
    return f" (chance {TASKS[target].chance:.2f})" if target in TASKS else ""


def _status_panels(grid: dict) -> list[dict]:
    return _place([{"type": "markdown", "text": _status_text(grid)}, {"type": "run_comparer"},
                   _scalar("eval/mean_accuracy", "mean accuracy, all cells"),
                   _scalar("pgf/mean_offdiag", "mean off-diagonal PGF, all cells")])


def _accuracy_panels(grid: dict, groupby: str | None) -> list[dict]:
    bars = [_bar(f"eval/{t}/accuracy", f"{t}: accuracy{_chance(t)}", grid["runs"], groupby) for t in grid["targets"]]
    return _place([*bars, _bar("eval/mean_accuracy", "mean accuracy over targets", grid["runs"], groupby)])


def _letter_panels(grid: dict, groupby: str | None) -> list[dict]:
    """The share of the most predicted letter per target (1.0: one letter for every question, e.g. all "(A)") and
    the letters table (each letter's share per target)."""
    bars = [_bar(f"eval/{t}/top_letter_share", f"{t}: share of the most predicted letter", grid["runs"], groupby)
            for t in grid["targets"]]
    return _place([*bars, {"type": "table", "key": "eval/letters"}])


def _pgf_panels(grid: dict, groupby: str | None, axes: tuple[str, ...]) -> list[dict]:
    parallel = {"type": "parallel", "title": "PGF per cell, one axis per target",
                "columns": [*axes, *(f"pgf/{t}" for t in grid["targets"])]}
    bars = [_bar(f"pgf/{t}", f"{t}: PGF", grid["runs"], groupby) for t in grid["targets"]]
    return _place([parallel, *bars, _bar("pgf/mean_offdiag", "mean off-diagonal PGF", grid["runs"], groupby)])


def _training_panels(grid: dict) -> list[dict]:
    return _place([_line(metric, f"{title} by model", grid["runs"]) for metric, title in TRAIN_METRICS.items()])


def _figure_keys(grid: dict, analysis: dict) -> list[str]:
    """The reduce run's image keys (figures/<png stem>), from the figure paths that analysis.json lists."""
    entries = analysis.get("models", {})
    paths = [p for m in grid["models"] for p in entries.get(m, {}).get("figures", {}).values()]
    paths += [p for name, p in analysis.get("figures", {}).items() if name != "report"]
    return [f"figures/{Path(p).stem}" for p in paths]


def _figure_panels(grid: dict, analysis: dict) -> list[dict]:
    """The reduce run's figures and its HTML report."""
    keys = [*_figure_keys(grid, analysis), "report"]
    return _place([{"type": "media", "title": key.removeprefix("figures/"), "keys": [key]} for key in keys])


def _table_panels(grid: dict) -> list[dict]:
    """The reduce run's tables: PGF and accuracy matrices of every model with scores, and the analysis."""
    keys = ["pgf", *(f"{kind}_{m}" for kind in ("pgf", "accuracy") for m in grid["models"]),
            *(f"analysis/{name}" for name in ("scores", "cliques", "personas", "selection"))]
    return _place([{"type": "table", "key": key} for key in keys])


# ---------------------------------------------------------------- workspace and report

def _workspace(sweep: str, grid: dict, analysis: dict) -> dict:
    """One view of the sweep's runs, grouped by model then source task (each bar: mean ± std over seeds)."""
    runset = _runset(sweep, sweep, groupby=("config.model", "config.source_task"))
    runset["pinned_columns"] = ["summary:status", "summary:eval/mean_accuracy", "summary:pgf/mean_offdiag"]
    sections = [("Grid status", _status_panels(grid)),
                ("Accuracy per target, by model and source task", _accuracy_panels(grid, None)),
                ("Answer letters: top-letter share per target, by model and source task",
                 _letter_panels(grid, None)),
                ("PGF per cell, by model and source task", _pgf_panels(grid, None, tuple(runset["groupby"]))),
                ("Training, by model", _training_panels(grid))]
    if analysis:                       # the reducer logs its run once it has analysed the sweep
        sections += [("Reduce: figures", _figure_panels(grid, analysis)), ("Reduce: tables", _table_panels(grid))]
    sections = [{"name": name, "panels": panels, "is_open": i < 3} for i, (name, panels) in enumerate(sections)]
    return {"name": f"transfer sweep {sweep}", "runset": runset, "max_runs": grid["runs"], "sections": sections}


def _report(sweep: str, grid: dict, analysis: dict) -> dict:
    """The workspace's panels, one grid per model where it splits by source task, plus findings in text."""
    cells = _runset(sweep, "cells", job_type="cell")
    blocks = [_md(_intro_text(sweep, grid)), _h("h2", "Grid status"), _grid_block([cells], _status_panels(grid)),
              _h("h2", "Findings")]
    for model in grid["models"]:
        blocks += [_h("h3", model), _md(_findings_text(analysis.get("models", {}).get(model), analysis))]
    source = "config.source_task"
    for title, panels in (("Accuracy per target", _accuracy_panels(grid, source)),
                          ("Top-letter share per target", _letter_panels(grid, source)),
                          ("PGF per cell", _pgf_panels(grid, source, (source,)))):
        blocks.append(_h("h2", f"{title}, by source task (mean ± std over seeds)"))
        for model in grid["models"]:
            blocks += [_h("h3", model), _grid_block([_runset(sweep, model, job_type="cell", model=model)], panels)]
    blocks += [_h("h2", "Training"), _grid_block([cells], _training_panels(grid))]
    if analysis:
        reduce = _runset(sweep, "reduce", job_type="reduce")
        blocks += [_h("h2", "Reduce outputs"), _grid_block([reduce], _figure_panels(grid, analysis)),
                   _grid_block([reduce], _table_panels(grid))]
    done = sum(c["done"] for c in grid["cells"].values())
    return {"title": f"transfer sweep {sweep}"[:128], "width": "fluid", "blocks": blocks,
            "description": f"PGF transfer sweep {sweep}: {len(grid['models'])} models, {done} finished cells."}


def _md(text: str) -> dict:
    return {"type": "markdown", "text": text}


def _h(level: str, text: str) -> dict:
    return {"type": level, "text": text}


def _grid_block(runsets: list[dict], panels: list[dict]) -> dict:
    return {"type": "panel_grid", "runsets": runsets, "panels": panels}


# ---------------------------------------------------------------- text

def _intro_text(sweep: str, grid: dict) -> str:
    seeds = ", ".join(map(str, grid["seeds"]))
    return (f"Sweep **{sweep}**: models {', '.join(grid['models'])}; {len(grid['sources'])} source tasks "
            f"(`{BASELINE}` = the base model) × seeds {seeds}; {len(grid['targets'])} target tasks.\n\n"
            "PGF(source → target) = (k_finetuned − k_base) / (n − k_base): the net share of the base model's "
            "wrong answers on the target that finetuning on the source fixes (negative: it breaks right ones).")


def _status_text(grid: dict) -> str:
    lines = ["| model | done | failed | missing |", "|---|---|---|---|"]
    lines += [f"| {m} | {c['done']} | {len(c['failed'])} | {len(c['missing'])} |" for m, c in grid["cells"].items()]
    failed = [f"{m}/{cell}" for m, c in grid["cells"].items() for cell in c["failed"]]
    if failed:
        more = f" (+{len(failed) - 10} more)" if len(failed) > 10 else ""
        lines += ["", f"Failed: {', '.join(failed[:10])}{more}"]
    return "\n".join(lines)


def _clique_text(cliques: list[dict]) -> str:
    largest = [c for c in cliques if c.get("maximum")][:3]
    if not largest:
        return "none"
    return "; ".join(f"{{{', '.join(c['tasks'])}}} (mean PGF {c['mean_pgf']:+.3f}, p = {c['p_value']:.3g})"
                     for c in largest)


def _selection_lines(advice: dict[str, list[dict]]) -> list[str]:
    lines = []
    for target in _in_order(advice, TASK_NAMES):
        best = ", ".join(f"{a['source']} ({a['pgf']:+.2f})" for a in advice[target][:2])
        lines.append(f"- {target} ← {best}")
    return lines or ["- no source lifts any target past the threshold"]


def _findings_text(entry: dict | None, analysis: dict) -> str:
    """Largest cliques, personas and data-selection advice of one model, from its analysis.json entry."""
    if not entry:
        return "No analysis for this model yet (it needs a finished `none` cell; run `python -m transfer.reduce`)."
    tests = entry.get("clique_tests", {})
    personas = entry.get("personas", {})
    threshold = analysis.get("settings", {}).get("selection_threshold")
    persona_lines = [f"- **{name}** ({meaning}): {', '.join(personas.get(name, [])) or '—'}"
                     for name, meaning in PERSONAS.items()]
    rule = f"; seed-mean PGF > {threshold:g}" if threshold is not None else ""
    advice = f"**Data selection** (per target, the best sources to mix in{rule}):"
    return "\n".join([f"**Largest positive cliques:** {_clique_text(tests.get('positive', []))}", "",
                      f"**Largest negative cliques:** {_clique_text(tests.get('negative', []))}", "",
                      "**Personas:**", *persona_lines, "", advice,
                      *_selection_lines(entry.get("data_selection", {}))])


# ---------------------------------------------------------------- keys the dashboard reads

def _panels(spec: dict) -> list[dict]:
    panels = [p for section in spec["workspace"]["sections"] for p in section["panels"]]
    return panels + [p for block in spec["report"]["blocks"] if block["type"] == "panel_grid" for p in block["panels"]]


def _keys_of(panel: dict) -> list[str]:
    match panel["type"]:
        case "bar":
            return panel["metrics"]
        case "line":
            return [panel["x"], *panel["y"]]
        case "scalar":
            return [panel["metric"]]
        case "parallel":
            return [c for c in panel["columns"] if not c.startswith("config.")]
        case "media":
            return panel["keys"]
        case "table":
            return [panel["key"]]
    return []


def panel_keys(spec: dict) -> set[str]:
    """Every logged key (history, summary, media, table) that a panel or pinned column of the spec reads."""
    pinned = {c.removeprefix("summary:") for c in spec["workspace"]["runset"]["pinned_columns"]}
    return pinned.union(*(_keys_of(panel) for panel in _panels(spec)))


# ---------------------------------------------------------------- spec -> wandb_workspaces objects

def _metric(name: str):
    import wandb_workspaces.reports.v2 as wr

    return wr.Config(name.removeprefix("config.")) if name.startswith("config.") else wr.Metric(name)


def _column(name: str):
    import wandb_workspaces.reports.v2 as wr

    metric = wr.Config(name.removeprefix("config.")) if name.startswith("config.") else wr.SummaryMetric(name)
    return wr.ParallelCoordinatesPlotColumn(metric=metric)


def _panel(spec: dict):
    """One wandb_workspaces panel from its spec."""
    import wandb_workspaces.reports.v2 as wr

    layout = wr.Layout(**spec["layout"])
    group = {"groupby_aggfunc": spec.get("agg"), "groupby_rangefunc": spec.get("range")}
    if spec.get("groupby"):
        group["groupby"] = _metric(spec["groupby"])
    match spec["type"]:
        case "bar":
            return wr.BarPlot(title=spec["title"], metrics=[_metric(m) for m in spec["metrics"]],
                              max_runs_to_show=spec["limit"], layout=layout, **group)
        case "line":
            return wr.LinePlot(title=spec["title"], x=_metric(spec["x"]), y=[_metric(m) for m in spec["y"]],
                               max_runs_to_show=spec["limit"], layout=layout, **group)
        case "scalar":
            return wr.ScalarChart(title=spec["title"], metric=_metric(spec["metric"]), layout=layout, **group)
        case "parallel":
            return wr.ParallelCoordinatesPlot(title=spec["title"], columns=[_column(c) for c in spec["columns"]],
                                              layout=layout)
        case "run_comparer":
            return wr.RunComparer(layout=layout)
        case "markdown":
            return wr.MarkdownPanel(markdown=spec["text"], layout=layout)
        case "media":
            return wr.MediaBrowser(title=spec["title"], media_keys=spec["keys"], layout=layout)
        case "table":
            return wr.WeavePanelSummaryTable(table_name=spec["key"], layout=layout)
    raise ValueError(f"unknown panel type {spec['type']!r} in the dashboard spec")


def _entity(spec: dict, entity: str | None) -> str:
    entity = entity or spec["entity"]
    if not entity:
        raise ValueError("the dashboard spec has no W&B entity; pass entity= (save() asks W&B for your default)")
    return entity


def to_workspace(spec: dict, entity: str | None = None):
    """The spec's workspace as a wandb_workspaces.workspaces.Workspace (`entity` overrides the spec's)."""
    import wandb_workspaces.workspaces as ws

    view, runset = spec["workspace"], spec["workspace"]["runset"]
    groupby = [ws.Config(g.removeprefix("config.")) if g.startswith("config.") else ws.Metric(g)
               for g in runset["groupby"]]
    settings = ws.RunsetSettings(filters=runset["filters"], groupby=groupby, pinned_columns=runset["pinned_columns"])
    sections = [ws.Section(name=s["name"], panels=[_panel(p) for p in s["panels"]], is_open=s["is_open"])
                for s in view["sections"]]
    return ws.Workspace(entity=_entity(spec, entity), project=spec["project"], name=view["name"], sections=sections,
                        settings=ws.WorkspaceSettings(max_runs=view["max_runs"]), runset_settings=settings)


def _block(spec: dict, entity: str, project: str):
    """One wandb_workspaces report block from its spec."""
    import wandb_workspaces.reports.v2 as wr

    match spec["type"]:
        case "panel_grid":
            runsets = [wr.Runset(entity=entity, project=project, name=r["name"], filters=r["filters"],
                                 groupby=r["groupby"]) for r in spec["runsets"]]
            return wr.PanelGrid(runsets=runsets, panels=[_panel(p) for p in spec["panels"]])
        case "markdown":
            return wr.MarkdownBlock(text=spec["text"])
        case "h2":
            return wr.H2(text=spec["text"])
        case "h3":
            return wr.H3(text=spec["text"])
    raise ValueError(f"unknown block type {spec['type']!r} in the dashboard spec")


def to_report(spec: dict, entity: str | None = None):
    """The spec's report as a wandb_workspaces.reports.v2.Report (`entity` overrides the spec's)."""
    import wandb_workspaces.reports.v2 as wr

    entity, report = _entity(spec, entity), spec["report"]
    return wr.Report(entity=entity, project=spec["project"], title=report["title"],
                     description=report["description"], width=report["width"],
                     blocks=[_block(b, entity, spec["project"]) for b in report["blocks"]])


def save(spec: dict) -> dict[str, str]:
    """Save the workspace and the report to W&B (needs credentials and network); their URLs."""
    import wandb

    entity = spec["entity"] or wandb.Api().default_entity
    workspace = to_workspace(spec, entity).save()
    report = to_report(spec, entity).save()
    return {"workspace": workspace.url, "report": report.url}


# ---------------------------------------------------------------- CLI

def write_spec(spec: dict, path: Path) -> Path:
    from transfer.atomic import write_bytes

    return write_bytes(path, json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def _why_not_online() -> str | None:
    """Why saving is not tried here (offline mode, no credentials, no wandb-workspaces), or None."""
    mode = os.environ.get("WANDB_MODE", "").lower()
    if mode in ("offline", "disabled", "dryrun"):
        return f"WANDB_MODE={mode}"
    if not has_credentials():
        return "no W&B credentials: WANDB_API_KEY or `wandb login`"
    try:
        import wandb_workspaces  # noqa: F401
    except ImportError:
        return "`pip install .[dashboard]` is needed to save: wandb-workspaces is not installed"
    return None


def main(argv: list[str] | None = None) -> int:
    """Write the spec and save it when possible: one line (the two URLs when saved); 0, 1 if saving failed."""
    from transfer.reduce import latest_sweep

    defaults = {"sweep": None, "outputs": os.environ.get("TRANSFER_OUTPUTS", "outputs"),
                "project": os.environ.get("WANDB_PROJECT", "transfer"), "entity": os.environ.get("WANDB_ENTITY")}
    try:
        args = command_options(sys.argv[1:] if argv is None else argv, "python -m transfer.dashboard",
                               __doc__.splitlines()[0], defaults)
        outputs = Path(args["outputs"] or "outputs")
        sweep_dir = outputs / args["sweep"] if args["sweep"] else latest_sweep(outputs)
        spec = build_spec(sweep_dir, entity=args["entity"], project=args["project"] or "transfer")
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    path = write_spec(spec, sweep_dir / "reduce" / SPEC_NAME)
    reason = _why_not_online()
    if reason:
        print(f"dashboard not saved to W&B ({reason}); spec written to {path}")
        return 0
    os.environ.setdefault("WANDB_SILENT", "true")
    try:
        urls = save(spec)
    except Exception as err:   # noqa: BLE001 - any failure of the W&B service or its API, on one line
        print(f"dashboard not saved to W&B: {type(err).__name__}: {(str(err).splitlines() or [''])[0]}")
        return 1
    print(f"workspace: {urls['workspace']}\nreport: {urls['report']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
