"""Figures (matplotlib, Agg, no pyplot): PGF heatmaps, transfer graphs, Δ/Θ bars, cross-model comparison.

Every plot_* function writes a PNG atomically and returns its path.
"""
from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import networkx as nx
import numpy as np
import polars as pl
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Circle
from PIL import Image, ImageDraw, ImageFont

from transfer.atomic import write_bytes
from transfer.tasks import TASKS

CMAP = "RdBu"                   # red = harm, white = 0, blue = gain
LEVEL_COLOURS = {"low": "#4c9f70", "mid": "#e0a526", "high": "#8f6bb3"}
POSITIVE, NEGATIVE = "#2166ac", "#b2182b"
MODEL_COLOURS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]
DPI = 100


def _render(fig: Figure) -> Image.Image:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3])


def _write_png(image: Image.Image, path: str | Path) -> Path:
    buffer = io.BytesIO()
    image.save(buffer, format="png", compress_level=1)
    return write_bytes(path, buffer.getvalue())


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Render a figure and write it as a PNG atomically."""
    fig.set_dpi(DPI)
    return _write_png(_render(fig), path)


@lru_cache(maxsize=8)
def _pil_font(size_px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans")), size_px)


def _abbrev(task: str) -> str:
    return TASKS[task].abbrev if task in TASKS else task


def plot_heatmap(matrix: np.ndarray, tasks: list[str], title: str, path: str | Path,
                 significant_mask: np.ndarray | None = None, predicted_mask: np.ndarray | None = None) -> Path:
    """PGF heatmap: rows = source, cols = target (given order), diverging colours centred at 0, values
    annotated, in-task diagonal outlined; with a mask, cells whose interval contains 0 are greyed and hatched;
    with a predicted mask, the cells a partial grid did not run (completion predictions) get a dashed outline."""
    matrix = np.asarray(matrix, dtype=float)
    size = len(tasks)
    if matrix.shape != (size, size):
        raise ValueError(f"heatmap matrix has shape {matrix.shape}, expected ({size}, {size}) for {size} tasks")
    for name, mask in (("significant_mask", significant_mask), ("predicted_mask", predicted_mask)):
        if mask is not None and np.shape(mask) != matrix.shape:
            raise ValueError(f"{name} has shape {np.shape(mask)}, expected {matrix.shape}")
    finite = np.abs(matrix[np.isfinite(matrix)])
    half = float(min(1.0, max(finite.max(initial=0.0), 0.05)))     # PGF ≤ 1; harm beyond −1 saturates
    labels = [_abbrev(t) for t in tasks]
    row_labels = [f"{t} ({a})" if a != t else t for t, a in zip(tasks, labels)]
    left = 0.4 + 0.065 * max(len(r) for r in row_labels)             # inches for the row labels
    cell, right, bottom, top = 0.55, 1.2, 0.75, 0.45
    width, height = left + cell * size + right, bottom + cell * size + top
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((left / width, bottom / height, cell * size / width, cell * size / height))
    edges = np.arange(size + 1) - 0.5                                  # quads: far cheaper than resampling imshow
    image = ax.pcolormesh(edges, edges, np.ma.masked_invalid(matrix), cmap=CMAP, norm=Normalize(-half, half))
    colorbar_axes = fig.add_axes(((left + cell * size + 0.15) / width, bottom / height, 0.18 / width,
                                  cell * size / height))
    fig.colorbar(image, cax=colorbar_axes, label="PGF (seed mean)")
    shaded = np.zeros(matrix.shape, dtype=bool) if significant_mask is None else \
        ~np.asarray(significant_mask, dtype=bool) & ~np.isnan(matrix)
    if shaded.any():                                                 # one overlay + one set of strokes
        rows, cols = np.nonzero(shaded)
        ax.add_collection(PolyCollection(
            [((c - 0.5, r - 0.5), (c + 0.5, r - 0.5), (c + 0.5, r + 0.5), (c - 0.5, r + 0.5))
             for r, c in zip(rows, cols)],
            facecolors=(0.85, 0.85, 0.85, 0.75), edgecolors="none"))
        strokes = [segment for r, c in zip(rows, cols) for segment in (
            ((c - 0.5, r + 0.5), (c + 0.5, r - 0.5)), ((c - 0.5, r), (c, r - 0.5)), ((c, r + 0.5), (c + 0.5, r)))]
        ax.add_collection(LineCollection(strokes, colors="#969696", linewidths=0.6))
    diagonal = np.arange(size)
    ax.add_collection(LineCollection(
        [((k - 0.5, k - 0.5), (k + 0.5, k - 0.5), (k + 0.5, k + 0.5), (k - 0.5, k + 0.5), (k - 0.5, k - 0.5))
         for k in diagonal], colors="black", linewidths=1.2))
    if predicted_mask is not None and np.any(predicted_mask):
        inset = 0.42
        ax.add_collection(LineCollection(
            [((c - inset, r - inset), (c + inset, r - inset), (c + inset, r + inset), (c - inset, r + inset),
              (c - inset, r - inset)) for r, c in zip(*np.nonzero(predicted_mask))],
            colors="#333333", linewidths=0.9, linestyles=(0, (2, 1.5))))
    ax.set_xlim(-0.5, size - 0.5)
    ax.set_ylim(size - 0.5, -0.5)
    ax.set_xticks(diagonal, labels, fontsize=8)
    ax.set_yticks(diagonal, row_labels, fontsize=8)
    ax.set_xlabel("target task (evaluated)")
    ax.set_ylabel("source task (finetuned on)")
    notes = (["hatched: interval contains 0"] if significant_mask is not None else []) + (
        ["dashed: predicted, not run"] if predicted_mask is not None and np.any(predicted_mask) else [])
    note = f" — {'; '.join(notes)}" if notes else ""
    ax.set_title(f"{title}{note}", fontsize=10)
    fig.set_dpi(DPI)
    image = _render(fig)
    # Cell values are drawn with PIL on the rendered raster: much faster than one matplotlib Text per cell.
    draw, font = ImageDraw.Draw(image), _pil_font(round(7 * DPI / 72))
    centres = ax.transData.transform(np.array([(j, i) for i in range(size) for j in range(size)], dtype=float))
    for (x, y), value, dark in zip(centres, matrix.ravel(), (~shaded & (np.abs(matrix) > 0.6 * half)).ravel()):
        if not np.isnan(value):
            draw.text((x, image.height - y), f"{value:.2f}", fill="white" if dark else "black", font=font, anchor="mm")
    return _write_png(image, path)


def _arrow(start: np.ndarray, end: np.ndarray, radius: float, head: float, bend: float = 0.12,
           points: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A curved edge between two node circles as (polyline, arrow-head triangle); i→j and j→i bend apart."""
    chord = end - start
    control = (start + end) / 2 + bend * np.array([chord[1], -chord[0]])
    t = np.linspace(0, 1, points)[:, None]
    curve = (1 - t) ** 2 * start + 2 * (1 - t) * t * control + t**2 * end
    outside = (np.linalg.norm(curve - start, axis=1) > radius) & (np.linalg.norm(curve - end, axis=1) > radius)
    curve = curve[outside]
    tip, direction = curve[-1].copy(), curve[-1] - curve[-2]
    direction = direction / np.linalg.norm(direction)
    normal = np.array([-direction[1], direction[0]])
    base = tip - head * direction
    curve[-1] = base
    return curve, np.array([tip, base + 0.45 * head * normal, base - 0.45 * head * normal])


def plot_graph(graph: nx.DiGraph, title: str, path: str | Path) -> Path:
    """Transfer graph on a circle: blue edges = positive transfer, red = negative, width ∝ |PGF|;
    node colour = perceptual level, node label = abbreviation."""
    fig = Figure(figsize=(7.5, 7.5))
    ax = fig.add_subplot()
    nodes = list(graph.nodes)
    angles = np.pi / 2 - 2 * np.pi * np.arange(len(nodes)) / max(len(nodes), 1)
    position = {n: (np.cos(a), np.sin(a)) for n, a in zip(nodes, angles)}
    radius = 0.11
    curves, heads, widths, colours = [], [], [], []
    for source, target, data in graph.edges(data=True):
        strength = min(abs(data["weight"]), 1.0)
        curve, head = _arrow(np.array(position[source]), np.array(position[target]), radius, 0.045 + 0.03 * strength)
        curves.append(curve)
        heads.append(head)
        widths.append(0.6 + 3.5 * strength)
        colours.append(POSITIVE if data["weight"] > 0 else NEGATIVE)
    # One collection for all curves and one for all heads: far cheaper than a FancyArrowPatch per edge.
    ax.add_collection(LineCollection(curves, linewidths=widths, colors=colours, alpha=0.75))
    ax.add_collection(PolyCollection(heads, facecolors=colours, edgecolors="none", alpha=0.85))
    for node in nodes:
        level = graph.nodes[node].get("level", "mid")
        ax.add_patch(Circle(position[node], radius, facecolor=LEVEL_COLOURS.get(level, "#bbbbbb"),
                            edgecolor="black", linewidth=1, zorder=3))
        ax.text(*position[node], graph.nodes[node].get("abbrev", node), ha="center", va="center",
                fontsize=10, fontweight="bold", zorder=4)
    for k, (level, colour) in enumerate(LEVEL_COLOURS.items()):
        ax.add_patch(Circle((-1.3, -1.15 - 0.1 * k), 0.035, color=colour))
        ax.text(-1.22, -1.15 - 0.1 * k, f"{level}-level", va="center", fontsize=8)
    ax.text(1.3, -1.25, "blue: helps   red: hurts", ha="right", fontsize=8)
    ax.set_xlim(-1.4, 1.4)
    ax.set_ylim(-1.45, 1.3)
    ax.set_aspect("equal")
    ax.axis("off")
    threshold = graph.graph.get("threshold")
    suffix = f" (|PGF| ≥ {threshold:g}, {graph.number_of_edges()} edges)" if threshold is not None else ""
    ax.set_title(f"{title}{suffix}", fontsize=10)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.95)
    return save_figure(fig, path)


def _error_bars(ax, x: np.ndarray, values: np.ndarray, err: np.ndarray) -> None:
    """± err whiskers as one line collection (ax.bar(yerr=…) builds an artist per bar)."""
    ax.vlines(x, values - err, values + err, colors="black", linewidths=1)


def plot_scores(scores: pl.DataFrame, title: str, path: str | Path) -> Path:
    """Bars of Δ⁺/Δ⁻ per source and Θ⁺/Θ⁻ per target, one colour per model (positive up, negative down,
    lighter), with ± seed-std whiskers when `<score>_std` columns are present.

    scores: seed-mean rows of transfer_scores (model, task, delta_pos, delta_neg, theta_pos, theta_neg).
    """
    models = scores["model"].unique(maintain_order=True).to_list()
    tasks = [t for t in TASKS if t in set(scores["task"].to_list())]
    x = np.arange(len(tasks))
    width = 0.8 / max(len(models), 1)
    fig = Figure(figsize=(min(16.0, max(10.0, 0.22 * len(tasks) * len(models) + 2)), 6.4))
    panels = [("delta", "transferability Δ (as source)"), ("theta", "malleability Θ (as target)")]
    for k, (prefix, label) in enumerate(panels):
        ax = fig.add_subplot(2, 1, k + 1)
        for m, model in enumerate(models):
            rows = {r["task"]: r for r in scores.filter(pl.col("model") == model).iter_rows(named=True)}
            offset = x + (m - (len(models) - 1) / 2) * width
            colour = MODEL_COLOURS[m % len(MODEL_COLOURS)]
            for suffix, alpha in (("pos", 0.95), ("neg", 0.45)):
                column = f"{prefix}_{suffix}"
                values = np.array([rows.get(t, {}).get(column) or 0.0 for t in tasks])
                ax.bar(offset, values, width, color=colour, alpha=alpha, label=model if suffix == "pos" else None)
                err = np.array([rows.get(t, {}).get(f"{column}_std") or 0.0 for t in tasks])
                _error_bars(ax, offset, values, err)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(x, [_abbrev(t) for t in tasks], fontsize=8)
        ax.set_ylabel(label, fontsize=9)
    fig.legend(*ax.get_legend_handles_labels(), loc="upper right", fontsize=8, ncols=min(len(models), 4), frameon=False)
    fig.suptitle(f"{title}  (bars up: positive, down: negative)", fontsize=10, x=0.02, ha="left")
    fig.subplots_adjust(left=0.07, right=0.99, bottom=0.06, top=0.9, hspace=0.3)
    return save_figure(fig, path)


def plot_model_comparison(per_model: pl.DataFrame, per_level: pl.DataFrame, path: str | Path) -> Path:
    """Average positive transferability/malleability per model (with seed std) and Δ⁺ per level per model."""
    models = per_model["model"].to_list()
    x = np.arange(len(models))
    fig = Figure(figsize=(11, 4.2))
    ax = fig.add_subplot(1, 2, 1)
    for offset, (column, colour, label) in zip((-0.2, 0.2), (("delta_pos", POSITIVE, "avg Δ⁺ (transferability)"),
                                                             ("theta_pos", "#67a9cf", "avg Θ⁺ (malleability)"))):
        values = np.nan_to_num(per_model[column].fill_null(np.nan).to_numpy())
        ax.bar(x + offset, values, 0.38, color=colour, label=label)
        if f"{column}_std" in per_model.columns:
            _error_bars(ax, x + offset, values, per_model[f"{column}_std"].fill_null(0.0).to_numpy())
    ax.set_xticks(x, models, fontsize=8, rotation=15)
    ax.set_ylabel("average over tasks")
    ax.set_title("positive transfer per model", fontsize=10)
    ax.legend(fontsize=8)
    ax = fig.add_subplot(1, 2, 2)
    levels = [lv for lv in LEVEL_COLOURS if lv in set(per_level["level"].to_list())]
    width = 0.8 / max(len(levels), 1)
    for k, level in enumerate(levels):
        rows = {r["model"]: r["delta_pos"] for r in per_level.filter(pl.col("level") == level).iter_rows(named=True)}
        ax.bar(x + (k - (len(levels) - 1) / 2) * width, [rows.get(m, np.nan) or 0.0 for m in models], width,
               color=LEVEL_COLOURS[level], label=f"{level}-level sources")
    ax.set_xticks(x, models, fontsize=8, rotation=15)
    ax.set_ylabel("average Δ⁺")
    ax.set_title("positive transferability by perceptual level of the source", fontsize=10)
    ax.legend(fontsize=8)
    fig.subplots_adjust(left=0.07, right=0.99, bottom=0.2, top=0.92, wspace=0.25)
    return save_figure(fig, path)
