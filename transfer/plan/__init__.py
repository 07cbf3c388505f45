"""`plan=true`: what a sweep would run and cost, without running a model.

One row per cell of the multirun: its status (finished, stale: finished with another config, failed: it raised
and runs again, to run, predicted: left out by `grid.*`, the reducer predicts it), its questions and prompt tokens
per question (transfer.plan.questions), and its estimated hours, device-hours and memory (transfer.plan.cost).
`show_plan` prints one table with the assumptions behind the estimates and writes it to <sweep>/plan.csv; where the
reducer has listed the next cells to run (reduce/next_cells.csv), their rank is a column.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from transfer.atomic import write_bytes
from transfer.plan import cost
from transfer.plan.questions import SAMPLE, profile
from transfer.records import FAILED, cell_dir, finished_hash
from transfer.spec import CellSpec

PLAN_FILE = "plan.csv"
NEXT_CELLS = Path("reduce") / "next_cells.csv"
RUNS = ("to run", "failed")   # statuses the sweep runs


@dataclass(frozen=True)
class Plan:
    rows: pl.DataFrame
    assumptions: list[str]
    notes: list[str]


def cell_name(spec: CellSpec) -> str:
    """model/source_task/seed, as grid.cells and reduce/next_cells.csv write a cell."""
    return f"{spec.model.name}/{spec.source}/{spec.seed}"


def status(spec: CellSpec, in_grid: bool) -> str:
    """finished, stale, predicted (not in the grid), failed (runs again) or to run."""
    cell = cell_dir(spec.sweep_dir, spec.model.name, spec.source, spec.seed)
    done = finished_hash(cell)
    if done and not spec.overwrite:
        return "finished" if done == spec.config_hash() else "stale"
    if not in_grid:
        return "predicted"
    return "failed" if (cell / FAILED).exists() else "to run"


def make_plan(specs: Sequence[CellSpec], in_grid: Sequence[bool], launcher: Sequence[str] = ()) -> Plan:
    """The plan of a sweep's jobs; `in_grid[i]` says whether job i is in the grid's subset; `launcher` lines say
    how the launcher runs them (e.g. the SLURM job arrays)."""
    ranks = _next_ranks(specs[0].sweep_dir) if specs else {}
    rows, notes, rates = [], [], {}
    assumptions: dict[str, list[str]] = {}   # text -> the models it holds for
    for spec, chosen in zip(specs, in_grid):
        prof = profile(spec)
        key = (spec.model.name, spec.config_hash())
        if key not in rates:
            rates[key] = cost.rates(spec, prof)
            for text in _model_assumptions(spec, prof, rates[key]):
                models = assumptions.setdefault(text, [])
                models += [] if spec.model.name in models else [spec.model.name]
        est = cost.estimate(spec, prof, rates[key])
        targets = [prof.tasks[t] for t in spec.target_tasks]
        eval_questions = sum(t.eval_questions for t in targets)
        train_questions, train_tokens = cost.training(spec, prof)
        rows.append({
            "model": spec.model.name, "source_task": spec.source, "seed": spec.seed, "status": status(spec, chosen),
            "train_questions": train_questions, "train_tokens": train_tokens,
            "eval_questions": eval_questions,
            "eval_tokens": sum(t.eval_questions * t.eval_tokens for t in targets) / eval_questions,
            "image_tokens": sum(t.eval_questions * t.image_tokens for t in targets) / eval_questions,
            "device": f"{cost.devices(spec)} GPU" if cost.on_gpu(spec) else "CPU",
            "hours": est.hours, "device_hours": est.device_hours, "mem_gb": est.mem_gb,
            "next_rank": ranks.get(cell_name(spec))})
        notes += _time_limit_note(spec, est, notes)
    frame = pl.DataFrame(rows, schema_overrides={"next_rank": pl.Int64})
    per_model = [f"{', '.join(models)}: {text}" for text, models in assumptions.items()]
    return Plan(frame, per_model + _common_assumptions(), notes + list(launcher))


def show_plan(plan: Plan, sweep_dir: Path) -> str:
    """The plan as one terminal table (returned and printed) and <sweep>/plan.csv."""
    path = write_bytes(sweep_dir / PLAN_FILE, plan.rows.write_csv().encode())
    text = format_plan(plan) + f"\nwritten: {path}"
    print(text, flush=True)
    return text


def format_plan(plan: Plan) -> str:
    rows = plan.rows
    counts = rows["status"].value_counts()
    by_status = ", ".join(f"{n} {s}" for s, n in sorted(counts.iter_rows(), key=lambda r: (-r[1], r[0])))
    running = rows.filter(pl.col("status").is_in(RUNS))
    header = (f"plan: {rows.height} cells ({by_status}); to run: {running.height} cells, "
              f"{duration(running['hours'].sum())} of cell time, {running['device_hours'].sum():.2f} device-hours")
    table = _table(rows.with_columns(pl.concat_str("model", "source_task", pl.col("seed").cast(pl.String),
                                                   separator="/").alias("cell")))
    per_model = [f"  {m}: {g.height} cells, {duration(g['hours'].sum())} of cell time, "
                 f"{g['device_hours'].sum():.2f} device-hours ({g['device'][0]} per cell), "
                 f"up to {g['mem_gb'].max():.1f} GB per device"
                 for (m,), g in running.group_by("model", maintain_order=True)]
    parts = [header, table, "to run, per model:", *(per_model or ["  nothing"]),
             "assumptions:", *(f"  - {a}" for a in plan.assumptions)]
    if plan.notes:
        parts += ["notes:", *(f"  - {n}" for n in plan.notes)]
    ranked = rows.filter(pl.col("next_rank").is_not_null() & (pl.col("status") != "finished")).sort("next_rank")
    if ranked.height:
        cells = ",".join(f"{r['model']}/{r['source_task']}/{r['seed']}" for r in ranked.head(5).iter_rows(named=True))
        parts.append(f"next cells by the completion model's uncertainty (reduce/next_cells.csv): grid.cells=[{cells}] "
                     "or grid.cells=[next:N]")
    return "\n".join(parts)


def duration(hours: float) -> str:
    """2.4h, 36m or 20s."""
    if hours >= 1:
        return f"{hours:.1f}h"
    return f"{hours * 60:.0f}m" if hours * 60 >= 1 else f"{hours * 3600:.0f}s"


def _tokens(value: float) -> str:
    return f"{value:.0f}" if value else "-"


# (column, header, alignment, format) of the terminal table
COLUMNS = [("cell", "cell", "<", str), ("status", "status", "<", str), ("train_questions", "train q", ">", str),
           ("train_tokens", "tok/q", ">", _tokens), ("eval_questions", "eval q", ">", str),
           ("eval_tokens", "tok/q", ">", _tokens), ("image_tokens", "img tok/q", ">", _tokens),
           ("device", "device", "<", str), ("hours", "time", ">", duration), ("device_hours", "dev-h", ">", duration),
           ("mem_gb", "mem GB", ">", lambda v: f"{v:.1f}"), ("next_rank", "next", ">", str)]


def _table(rows: pl.DataFrame) -> str:
    cells = [["-" if r[key] is None else fmt(r[key]) for key, _, _, fmt in COLUMNS] for r in rows.iter_rows(named=True)]
    widths = [max(len(head), *(len(c[i]) for c in cells)) for i, (_, head, _, _) in enumerate(COLUMNS)]
    line = [" ".join(f"{head:{align}{w}}" for (_, head, align, _), w in zip(COLUMNS, widths))]
    line += [" ".join(f"{c:{align}{w}}" for c, (_, _, align, _), w in zip(row, COLUMNS, widths)) for row in cells]
    return "\n".join(line)


def _model_assumptions(spec: CellSpec, prof, rate: cost.Rates) -> list[str]:
    """Sentences about one model's figures (the plan prints each once, with the models it holds for)."""
    model = spec.model
    out = [f"tokens from {prof.tokens_from}", f"costed with {rate.source}"]
    if model.checkpoint is None:
        from transfer.embedded.pretrain import pretrain_key

        built = spec.cache_dir / "models" / f"{model.name}-{pretrain_key(spec)}"
        if not (built / "config.json").exists():
            out.append(f"the base model is not cached yet: the model's first cell pretrains it first "
                       f"({spec.pretrain.steps} steps, about {duration(cost.pretrain_hours(spec))}, not in the table)")
    elif cost.size_b(spec) is None:
        out.append(f"the checkpoint name gives no parameter count; costed as the family's "
                   f"{cost.REFERENCE_B[model.family]:g}B-class model")
    return out


def _common_assumptions() -> list[str]:
    return [f"prompt tokens: the chat prompt with its images, mean over up to {SAMPLE} questions per task; "
            "train tokens of the source task (a mixture's tasks weighted by its shares), eval tokens weighted over the "
            "targets",
            "a cell trains train.steps (a mixture: its share of them) x train.batch_size x train.grad_accum (set by "
            "train.global_batch for the cell's GPUs) questions per device and evaluates "
            "every target on every device; model loading and start-up are not counted on GPUs",
            "GPU memory per GPU: the weights (split over the GPUs under ZeRO-3) plus activations of one micro-batch "
            f"of the longest source task, plus {cost.CUDA_OVERHEAD - 1:.0%}; optimizer state of LoRA left out",
            "a none cell of another seed copies a finished none cell's evaluation: counted as a full evaluation"]



def _time_limit_note(spec: CellSpec, est: cost.Estimate, notes: list[str]) -> list[str]:
    resources = spec.model.resources
    if not resources or est.hours * 60 <= resources.time_min:
        return []
    note = (f"{spec.model.name}: a cell may need {est.hours:.1f} h, more than model.resources.time_min="
            f"{resources.time_min}: it is re-queued and resumes from its checkpoints (train.save_steps)")
    return [] if note in notes else [note]


def _next_ranks(sweep_dir: Path) -> dict[str, int]:
    path = sweep_dir / NEXT_CELLS
    if not path.is_file():
        return {}
    frame = pl.read_csv(path, schema_overrides={"seed": pl.String})
    return dict(zip(frame["cell"].to_list(), frame["rank"].to_list()))
