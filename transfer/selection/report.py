"""The data-selection experiment's outputs: tables, a figure per target (arms with intervals), a summary figure
(each PGF arm minus random, per target) and one self-contained report.html."""
from __future__ import annotations

from pathlib import Path

import polars as pl
from matplotlib.figure import Figure

from transfer.analysis.figures import NEGATIVE, POSITIVE, save_figure
from transfer.analysis.report import CSS, escape, html_image, html_table
from transfer.atomic import write_bytes
from transfer.selection.arms import ARM_NAMES, PGF_ARMS, RANDOM

ARM_COLOURS = {"base": "#666666", "direct": "#1b9e77", "uniform": "#a6761d", RANDOM: "#999999",
               "pgf_top": POSITIVE, "pgf_weighted": "#4393c3", "pgf_centred": "#053061", "bottom": NEGATIVE,
               "oracle": "#e7298a"}


def whiskers(value: float, low: float, high: float) -> list[list[float]]:
    """errorbar's yerr for an interval; a bound past the estimate by float rounding (a bootstrap of all-correct
    answers) gives a zero whisker, not a negative one."""
    return [[max(0.0, value - low)], [max(0.0, high - value)]]


def plot_target(accuracy: pl.DataFrame, draws: pl.DataFrame, target: str, path: Path) -> Path:
    """Accuracy on `target` per arm with its interval; the random arm's single draws as grey dots."""
    rows = accuracy.filter(pl.col("target_task") == target)
    arms = [a for a in ARM_NAMES if a in set(rows["arm"])]
    fig = Figure(figsize=(1.0 + 0.75 * len(arms), 3.4))
    ax = fig.add_subplot()
    for x, arm in enumerate(arms):
        row = rows.filter(pl.col("arm") == arm).row(0, named=True)
        ax.errorbar(x, row["accuracy"], yerr=whiskers(row["accuracy"], row["ci_low"], row["ci_high"]),
                    fmt="o", color=ARM_COLOURS.get(arm, "black"), capsize=4)
        if arm == RANDOM:
            values = draws.filter(pl.col("target_task") == target)["accuracy"].to_list()
            ax.scatter([x + 0.15] * len(values), values, s=10, color="#bbbbbb", zorder=0)
    ax.set_xticks(range(len(arms)), arms, rotation=35, ha="right")
    ax.set_ylabel("accuracy (scoring half)")
    ax.set_title(f"{target}: arms, 95 % intervals")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_summary(versus: pl.DataFrame, path: Path) -> Path:
    """Per target, each PGF arm's accuracy minus the random arm's, with its paired interval."""
    targets = sorted(set(versus["target_task"]))
    fig = Figure(figsize=(1.5 + 1.1 * len(targets), 3.4))
    ax = fig.add_subplot()
    width = 0.8 / len(PGF_ARMS)
    for k, arm in enumerate(PGF_ARMS):
        for x, target in enumerate(targets):
            rows = versus.filter((pl.col("arm") == arm) & (pl.col("target_task") == target))
            if rows.is_empty():
                continue
            row = rows.row(0, named=True)
            ax.errorbar(x + (k - 1) * width, row["difference"],
                        yerr=whiskers(row["difference"], row["ci_low"], row["ci_high"]), fmt="s",
                        color=ARM_COLOURS[arm], capsize=3, label=arm if x == 0 else None)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(range(len(targets)), targets, rotation=25, ha="right")
    ax.set_ylabel("accuracy − random")
    ax.set_title("PGF-guided mixtures against random mixtures of the same size")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def write_report(out: Path, tables: dict[str, dict[str, pl.DataFrame]], figures: dict[str, list[Path]],
                 setup: dict) -> Path:
    """selection/report.html: the setup, then per budget the summary, the tests over targets, per target the
    arms and the collateral change on the other targets."""
    parts = [f"<h1>PGF-guided data selection: {escape(setup['model'])}</h1>",
             html_table([{"key": k, "value": str(v)} for k, v in setup.items() if k != "roles"], ["key", "value"],
                        left=2)]
    for budget, t in tables.items():
        parts.append(f"<h2>Budget {escape(budget)} of the training steps</h2>")
        parts += [html_image(p, "selection figure") for p in figures[budget]]
        for name, caption in (("across_targets", "PGF arm − mean random, over targets (sign test, Wilcoxon)"),
                              ("versus_random", "Per target: PGF arm − random, paired interval, percentile"),
                              ("accuracy", "Per target and arm: accuracy on the scoring half, 95 % interval"),
                              ("collateral", "Collateral: mean change on the other targets against the base")):
            frame = t[name]
            parts += [f"<h3>{escape(caption)}</h3>", html_table(frame.to_dicts(), frame.columns)]
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Data selection</title>'
            f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>")
    return write_bytes(out / "report.html", page)
