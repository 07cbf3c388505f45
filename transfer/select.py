"""PGF-guided data selection: what should I train on to get better at task T, and how sure are we?

    python -m transfer.select from_sweep=main model=llava 'targets=[Art_Style,Visual_Similarity]'
    python -m transfer.select from_sweep=paper model=qwen2.5vl-7b 'targets=[Jigsaw,Object_Localization]' \\
        "overrides=['experiment=paper','data.root=/data/BLINK']"

Chooses the arms from the finished sweep `from_sweep` (its PGF on one half of each task's questions), runs every
arm x seed as a mixture cell of the sweep `sweep` (finished cells are skipped, a changed one is refused), then
writes `outputs/<sweep>/selection/`: the tables, a figure per target, a summary figure, report.html and a W&B run.
`overrides` are the source sweep's own (the same data and training settings; experiment=paper brings the SLURM
launcher, whose per-sweep reducer job is turned off: the selection has its own statistics).
See transfer/selection/experiment.py for the steps.
"""
from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import hydra
import polars as pl
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from transfer.cli import CONF_DIR, check_overrides, one_line_errors, quiet_libraries, setup_logging
from transfer.spec import SelectSpec

log = logging.getLogger("transfer")


def prepare(spec: SelectSpec, outputs: Path) -> tuple[dict, Path]:
    """Choose the arms from the source sweep and write the plan; returns (plan, arms file)."""
    from transfer.selection.experiment import select_arms, source_predictions, write_plan

    source = outputs / spec.from_sweep
    predictions = source_predictions(source, spec.model.name)
    planted_file = source / "reduce" / "planted.parquet"   # the synthetic suite's planted table: the oracle arm
    planted = pl.read_parquet(planted_file) if planted_file.exists() else None
    examples = spec.examples or _trained_on(source, spec.model.name)
    chosen = select_arms(predictions, spec.model.name, spec.targets, salt=spec.split_salt, k=spec.k,
                         n_random=spec.n_random, examples=examples, budgets=spec.budgets, planted=planted)
    notes = list(dict.fromkeys(f"{r['target_task']} {r['arm']}: {r['note']}" for r in chosen.roles if r["note"]))
    meta = {"model": spec.model.name, "from_sweep": spec.from_sweep, "targets": spec.targets, "k": spec.k,
            "n_random": spec.n_random, "seeds": spec.seeds, "budgets": spec.budgets, "examples": examples,
            "split": f"per task, the base model's eval questions halved by sha256({spec.split_salt}/<task>/idx)"
                     " order, stratified by answer: the selection halves choose, the scoring halves score",
            "cells": len(chosen.mixtures) * len(spec.seeds), "notes": notes}
    out = outputs / spec.sweep / "selection"
    arms = write_plan(out, chosen, meta)
    for note in notes:
        log.info("%s", note)
    log.info("data selection: %d targets, %d arms, %d distinct mixtures x %d seeds = %d cells (plan in %s)",
             len(spec.targets), len(chosen.roles), len(chosen.mixtures), len(spec.seeds), meta["cells"], out)
    return {**meta, "roles": chosen.roles,
            "questions": {t: {"selection": a, "scoring": b} for t, (a, b) in chosen.halves.items()},
            "mixtures": len(chosen.mixtures)}, arms


def _trained_on(source: Path, model: str) -> int:
    """The training questions of the source sweep's finetuned cells: every arm gets as many."""
    from transfer.records import read_sweep
    from transfer.tasks import BASELINE

    scores = read_sweep(source).filter((pl.col("model") == model) & (pl.col("source_task") != BASELINE))
    trained = scores.filter(pl.col("train_examples") > 0)["train_examples"]
    if trained.is_empty():
        raise ValueError(f"from_sweep={source.name!r}: no finetuned cell of {model!r} records its training "
                         "questions; pass examples=N")
    return int(trained.median())


def cell_command(spec: SelectSpec, arms: Path, n_mixtures: int, option: str) -> list[str]:
    """The `transfer.run` arguments of the experiment's cells: every mixture x seed as one multirun, with the
    source sweep's overrides. When the cells' launcher (as Hydra composes it: hydra/launcher=slurm*, or one that
    experiment=paper brings) queues a reducer job, that job is turned off: the selection has its own statistics."""
    from transfer.selection.experiment import cell_args

    args = cell_args(arms, n_mixtures, option, spec.seeds, spec.sweep, spec.overrides)
    if _cells_launcher(option, spec.overrides).get("reducer_command") is not None:
        args.append("hydra.launcher.reducer_command=null")
    return args


def _cells_launcher(option: str, overrides: list[str]) -> DictConfig:
    """The hydra.launcher node of the cells' config (conf/config.yaml with the model and the overrides); overrides
    Hydra cannot compose are a one-line error."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    args = [f"model={option}", *overrides]
    try:
        if GlobalHydra.instance().is_initialized():   # inside transfer.select's own Hydra app: the same conf/
            return compose(config_name="config", overrides=args, return_hydra_config=True).hydra.launcher
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(config_name="config", overrides=args, return_hydra_config=True).hydra.launcher
    except HydraException as err:
        raise ValueError(f"overrides={overrides}: the cells' config does not compose: "
                         f"{str(err).splitlines()[0]}") from err


def run_cells(args: list[str]) -> None:
    """The cells through the real CLI, as one multirun (local or SLURM, as the overrides say)."""
    log.info("running: python -m transfer.run %s", " ".join(args))
    done = subprocess.run([sys.executable, "-m", "transfer.run", *args])
    if done.returncode:
        raise ValueError(f"the selection cells did not all finish (exit {done.returncode}); run the same command "
                         "again to complete them (finished cells are skipped)")


def analyse(spec: SelectSpec, plan: dict, outputs: Path) -> dict:
    """Statistics per budget on the scoring half, figures, report.html and the W&B run."""
    from transfer.atomic import write_bytes, write_json
    from transfer.selection.experiment import scored_questions
    from transfer.selection.report import plot_summary, plot_target, write_report
    from transfer.selection.statistics import experiment_statistics

    out = outputs / spec.sweep / "selection"
    frame = scored_questions(outputs / spec.sweep, spec.model.name, plan)
    tables, figures = {}, {}
    for budget in spec.budgets:
        rows = frame.filter(pl.col("budget") == budget).drop("budget")
        stats = experiment_statistics(rows, n_boot=spec.n_boot)
        draws = (rows.filter((pl.col("arm") == "random") & (pl.col("eval_task") == pl.col("target_task")))
                 .group_by("target_task", "draw").agg(pl.col("correct").mean().alias("accuracy")))
        tag = f"{budget:g}"
        for name, table in stats.items():
            write_bytes(out / f"budget={tag}" / f"{name}.csv", table.write_csv())
        figures[tag] = [plot_summary(stats["versus_random"], out / f"budget={tag}" / "summary.png"),
                        *(plot_target(stats["accuracy"], draws, t, out / f"budget={tag}" / f"target_{t}.png")
                          for t in spec.targets)]
        tables[tag] = stats
    setup = {k: v for k, v in plan.items() if k not in ("roles", "questions")}
    report = write_report(out, tables, figures, setup)
    summary = {"setup": setup, **{f"budget={b}": {name: t.to_dicts() for name, t in stats.items()
                                                   if name in ("versus_random", "across_targets")}
                                  for b, stats in tables.items()}}
    write_json(summary, out / "summary.json")
    _log_wandb(spec, outputs, tables, figures, report, setup)
    for budget, stats in tables.items():
        for row in stats["across_targets"].iter_rows(named=True):
            log.info("budget %s, %s - random over %d targets: mean %+.3f, better on %d, sign p %.3g, Wilcoxon p %.3g",
                     budget, row["arm"], row["n_targets"], row["mean_difference"], row["targets_better"],
                     row["sign_p"], row["wilcoxon_p"])
    return summary


def _log_wandb(spec: SelectSpec, outputs: Path, tables: dict, figures: dict, report: Path, setup: dict) -> None:
    """The selection's W&B run; never raises (transfer.tracking)."""
    from transfer.tracking import never_fatal, wandb_run

    sweep_dir = outputs / spec.sweep
    with never_fatal("selection run"), wandb_run(
            spec.wandb, sweep_dir=sweep_dir, group=spec.sweep, job_type="reduce", name="selection",
            run_key="selection", config=setup, tags=["selection"]) as run:
        for budget, stats in tables.items():
            for name, table in stats.items():
                run.log_table(f"selection/budget={budget}/{name}", table)
            run.log_images(f"selection/budget={budget}", figures[budget])
        run.log_html("selection/report", report)
        run.log_artifact(f"selection-{spec.sweep}", "selection-results",
                         [p for p in (report.parent).rglob("*") if p.is_file()])


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="select")
@one_line_errors
def main(cfg: DictConfig) -> None:
    spec = SelectSpec.from_config(cfg)
    option = HydraConfig.get().runtime.choices["model"]   # the config the cells compose (model=<option>)
    outputs = Path(spec.paths.outputs)
    plan, arms = prepare(spec, outputs)
    args = cell_command(spec, arms, plan["mixtures"], option)
    if not spec.run:
        print("python -m transfer.run " + " ".join(args))
        return
    run_cells(args)
    analyse(spec, plan, outputs)


if __name__ == "__main__":
    check_overrides(sys.argv[1:], "select")
    quiet_libraries()
    setup_logging()
    main()
