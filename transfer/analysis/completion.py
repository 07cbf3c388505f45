"""Completing a partial PGF grid: predict the source rows a sweep did not run, with calibrated intervals.

A cell of a sweep is one (model, source, seed) run and it evaluates every target, so what is missing is
always whole rows of a model's matrix: a source not run for some seed (the cell is observed, its seed mean
rests on fewer seeds) or not run at all (the row is predicted). The estimand of every output cell is the
seed-mean PGF over the model's seeds (every seed label the model has in the observed frame).

Methods (off-diagonal cells and the in-task diagonal are modelled apart; in-task gain is a different thing):

- column: the target's mean over the observed rows; the diagonal is the mean observed in-task PGF.
- additive: a two-way fit (target effect + source effect) on the observed off-diagonal cells; an unobserved
  source has an unknown source effect, so its cells get the target effect. The diagonal is the mean
  observed in-task PGF.
- cross_model: additive, plus what the same source shows in the other models of the sweep where it is
  observed ("donors"): its source effect, its interaction residuals and its in-task residual, each
  standardised per model, averaged over donors and carried over with one slope per part fitted on the
  sources observed in several models. Without a donor it is additive.
- lowrank: additive, plus a soft-impute fill of the source × (model, target) matrix of standardised
  residuals; it reads other models through the shared source row. Without a donor it is additive.

Intervals: leave-one-row-out conformal. Every observed row of a model with at least two observed rows is
hidden in turn, predicted from everything else with the same method, and its absolute residuals, divided
by the model's spread (per kind: off-diagonal or diagonal), are pooled over models; the interval of a
predicted cell is ± the conformal quantile of the scores of its kind (and of its evidence: with or without a
donor, when the method reads donors and that group has enough scores) times its model's spread. The
guarantee assumes the unobserved rows are like the observed ones (sources left out at random). Observed
cells whose seed mean rests on k of the model's S seeds get ± z·σ·√((S−k)/(S·k)), σ the model's pooled
seed-to-seed sd of that kind; with all seeds the interval is the point.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import polars as pl

from transfer.analysis.tables import normalise_pgf, ordered_models, ordered_tasks

METHODS = ("column", "additive", "cross_model", "lowrank")
DEFAULT_METHOD = "cross_model"
KINDS = ("off", "diag")
_READS_DONORS = frozenset({"cross_model", "lowrank"})
_LOWRANK_SHRINK = 0.5           # soft-impute threshold, as a share of the largest singular value
_PARTS = ("row", "inter", "diag")


@dataclass(frozen=True)
class _Grid:
    """One model's observed runs: the seed-mean matrix (NaN rows = unobserved sources) and seed counts."""
    mean: np.ndarray            # T×T, rows = source, cols = target
    count: np.ndarray           # T×T, seeds behind each cell's mean
    seeds: list[str]            # the model's seed labels, sorted
    runs: list[set[str]]        # per source, the seeds run
    sigma: dict[str, float]     # pooled seed-to-seed sd per kind; NaN without a cell of two seeds


@dataclass(frozen=True)
class _Additive:
    """Two-way fit of one model's observed rows (off-diagonal) and its mean in-task PGF."""
    col: np.ndarray             # (T,) target effects: the prediction for an unobserved off-diagonal cell
    row: np.ndarray             # (T,) source effects, centred over the observed rows; NaN elsewhere
    inter: np.ndarray           # T×T residuals of the two-way fit; NaN on the diagonal and unobserved rows
    diag: np.ndarray            # (T,) in-task prediction: the mean observed in-task PGF
    diag_res: np.ndarray        # (T,) observed in-task PGF minus `diag`; NaN where unobserved


@dataclass(frozen=True)
class _Fit:
    """Everything complete() and next_cells() share."""
    tasks: list[str]
    method: str
    level: float
    grids: dict[str, _Grid]
    pred: dict[str, np.ndarray]             # model → T×T predictions (used on unobserved rows)
    donors: dict[str, np.ndarray]           # model → (T,) other models observing the source
    spread: dict[str, dict[str, float]]     # model → kind → scale of the residuals
    quantile: dict[tuple[str, bool], tuple[float, int]]   # (kind, informed) → (score quantile, scores used)


# ---------------------------------------------------------------------------------------------------------
# Public entry points


def complete(observed: pl.DataFrame, *, method: str = DEFAULT_METHOD, level: float = 0.9,
             tasks: list[str] | None = None, models: list[str] | None = None) -> pl.DataFrame:
    """Seed-mean PGF of every (model, source, target) cell: observed where run, predicted where not.

    observed: long PGF frame of the runs done (model, source_task, target_task, seed, pgf); every run must
    cover all targets. tasks: the sweep's tasks (sources = targets), default the observed targets.
    models: the sweep's models, default those in `observed` (each needs at least one observed row).

    Columns: model, source_task, target_task; pgf (seed mean of the observed seeds, else the prediction);
    observed (at least one seed run); n_seeds (seeds run); method ("observed", or the method that made the
    prediction: "additive" where a donor-reading method found no donor); donors (other models in which the
    source is observed); ci_low, ci_high (interval at `level` for the seed mean over the model's seeds; the
    point for cells run in every seed; null where nothing calibrates it); calibration_n (held-out residuals
    behind a predicted cell's interval, null for observed cells); level.
    """
    fit = _fit(observed, method, level, tasks, models)
    frames = [_model_frame(fit, model) for model in fit.grids]
    return pl.concat(frames).with_columns(pl.col("ci_low", "ci_high").fill_nan(None))


def next_cells(observed: pl.DataFrame, *, method: str = DEFAULT_METHOD, level: float = 0.9,
               tasks: list[str] | None = None, models: list[str] | None = None) -> pl.DataFrame:
    """The runs not done yet, most informative first: how much each would shrink the completion's intervals.

    gain = the summed interval width (over all cells of the sweep) that running the cell removes: its own
    row's width less what one seed leaves (seed noise), plus, for a donor-reading method, the narrowing of
    the same source's unobserved rows in models that have no donor for it yet.

    Columns: model, source_task, seed (the seed label to run: the lowest one missing), gain, row_width (the
    row's current mean interval width), rank (1 = run first).
    """
    fit = _fit(observed, method, level, tasks, models)
    rows = []
    for model, grid in fit.grids.items():
        width = _widths(fit, model)
        for i, source in enumerate(fit.tasks):
            k = int(grid.count[i].min())
            if k >= len(grid.seeds):
                continue
            missing = [s for s in grid.seeds if s not in grid.runs[i]]
            gain = float(np.nansum(width[i]) - np.nansum(_seed_widths(fit, model, i, k + 1)))
            if k == 0:
                gain += _donor_gain(fit, model, i)
            rows.append({"model": model, "source_task": source, "seed": missing[0], "gain": max(gain, 0.0),
                         "row_width": float(np.nanmean(width[i]))})
    schema = {"model": pl.String, "source_task": pl.String, "seed": pl.String, "gain": pl.Float64,
              "row_width": pl.Float64}
    frame = pl.DataFrame(rows, schema=schema).sort("gain", "row_width", "model", "source_task",
                                                   descending=[True, True, False, False])
    return frame.with_columns(pl.int_range(1, pl.len() + 1).cast(pl.Int64).alias("rank"))


def completed_pgf(observed: pl.DataFrame, completion: pl.DataFrame) -> pl.DataFrame:
    """A long PGF frame of the completed sweep for transfer.analysis: the observed runs as they are, and
    every predicted cell repeated in each of its model's seeds, so seed means equal the completion's pgf.

    Columns: model, source_task, target_task, seed, pgf, predicted (bool). Predicted rows carry no seed
    spread: tests over seeds (clique p-values) treat them as if run, so they overstate confidence there.
    """
    runs = normalise_pgf(observed, origin="observed PGF frame").select("model", "source_task", "target_task",
                                                                       "seed", "pgf")
    seeds = runs.select("model", "seed").unique()
    predicted = (completion.filter(~pl.col("observed")).join(seeds, on="model")
                 .select("model", "source_task", "target_task", "seed", "pgf"))
    return pl.concat([runs.with_columns(pl.lit(False).alias("predicted")),
                      predicted.with_columns(pl.lit(True).alias("predicted"))]).sort(
        "model", "source_task", "seed", "target_task")


# ---------------------------------------------------------------------------------------------------------
# Input


def _fit(observed: pl.DataFrame, method: str, level: float, tasks: list[str] | None,
         models: list[str] | None) -> _Fit:
    if method not in METHODS:
        raise ValueError(f"unknown completion method {method!r}; expected one of {list(METHODS)}")
    if not 0 < level < 1:
        raise ValueError(f"completion level must be in (0, 1), got {level}")
    observed = normalise_pgf(observed, origin="observed PGF frame")
    tasks = _tasks(observed, tasks)
    models = _models(observed, models)
    grids = {model: _grid(observed, model, tasks) for model in models}
    means = {model: grid.mean for model, grid in grids.items()}
    spread = _spreads(means)
    quantile = _calibrate(means, method, spread, level)
    return _Fit(tasks, method, level, grids, _predict(means, method), _donors(means), spread, quantile)


def _tasks(observed: pl.DataFrame, tasks: list[str] | None) -> list[str]:
    seen = set(observed["target_task"].to_list())
    if tasks is None:
        return ordered_tasks(seen)
    unknown = sorted(seen - set(tasks) | set(observed["source_task"].to_list()) - set(tasks))
    if unknown:
        raise ValueError(f"observed PGF frame has tasks {unknown} outside the given tasks {list(tasks)}")
    return ordered_tasks(tasks)


def _models(observed: pl.DataFrame, models: list[str] | None) -> list[str]:
    present = ordered_models(observed)
    if models is None:
        return present
    empty = [m for m in models if m not in present]
    if empty:
        raise ValueError(f"model {empty[0]!r} has no observed source row; run at least one cell of it")
    return [m for m in present if m in models]


def _grid(observed: pl.DataFrame, model: str, tasks: list[str]) -> _Grid:
    rows = observed.filter(pl.col("model") == model)
    sources = set(rows["source_task"].to_list())
    if not sources <= set(tasks):
        raise ValueError(f"model {model!r} has sources {sorted(sources - set(tasks))} that are not targets")
    for source, seed, targets in rows.group_by("source_task", "seed").agg(pl.col("target_task")).iter_rows():
        if len(targets) != len(tasks):
            missing = sorted(set(tasks) - set(targets))
            raise ValueError(f"run model={model!r} source={source!r} seed={seed!r} lacks targets {missing}; "
                             f"every run must evaluate all {len(tasks)} tasks")
    position = {t: i for i, t in enumerate(tasks)}
    cells = rows.group_by("source_task", "target_task").agg(pl.col("pgf").mean().alias("mean"),
                                                            pl.len().alias("count"))
    at = ([position[s] for s in cells["source_task"]], [position[t] for t in cells["target_task"]])
    mean, count = np.full((len(tasks),) * 2, np.nan), np.zeros((len(tasks),) * 2, dtype=int)
    mean[at], count[at] = cells["mean"].to_numpy(), cells["count"].to_numpy()
    runs = [set(rows.filter(pl.col("source_task") == t)["seed"].to_list()) for t in tasks]
    return _Grid(mean, count, sorted(rows["seed"].unique().to_list()), runs, _seed_sigma(rows))


def _seed_sigma(rows: pl.DataFrame) -> dict[str, float]:
    """Pooled within-cell sd over seeds, off-diagonal and diagonal apart."""
    kind = pl.when(pl.col("source_task") == pl.col("target_task")).then(pl.lit("diag")).otherwise(pl.lit("off"))
    cells = (rows.with_columns(kind.alias("kind")).group_by("kind", "source_task", "target_task")
             .agg(((pl.col("pgf") - pl.col("pgf").mean()) ** 2).sum().alias("ss"), (pl.len() - 1).alias("dof")))
    pooled = cells.group_by("kind").agg(pl.col("ss").sum(), pl.col("dof").sum())
    sigma = {k: float("nan") for k in KINDS}
    for k, ss, dof in pooled.iter_rows():
        if dof > 0:
            sigma[k] = math.sqrt(ss / dof)
    return sigma


# ---------------------------------------------------------------------------------------------------------
# Predictions


def _predict(means: dict[str, np.ndarray], method: str) -> dict[str, np.ndarray]:
    """T×T predictions per model from the seed-mean matrices (unobserved rows NaN)."""
    if method == "column":
        return {model: _column(x) for model, x in means.items()}
    fits = {model: _additive(x) for model, x in means.items()}
    pred = {model: _compose(f.col, f.diag) for model, f in fits.items()}
    if method == "cross_model":
        for model, carried in _carry(fits).items():
            pred[model] += carried
    elif method == "lowrank":
        for model, filled in _lowrank(fits).items():
            pred[model] += filled
    return pred


def _column(x: np.ndarray) -> np.ndarray:
    off = _off(x)
    col = _nanmean(off, axis=0)
    return _compose(np.where(np.isnan(col), np.nanmean(col), col), np.full(len(x), np.nanmean(np.diag(x))))


def _additive(x: np.ndarray) -> _Additive:
    observed = _observed(x)
    off = _off(x)
    row = np.where(observed, 0.0, np.nan)
    for _ in range(100):
        col = _nanmean(off - row[:, None], axis=0)
        col = np.where(np.isnan(col), np.nanmean(col), col)          # a target seen only on its diagonal
        new = _nanmean(off - col, axis=1)
        new = np.where(observed, new - np.nanmean(new), np.nan)
        done = np.nanmax(np.abs(new - row), initial=0.0) < 1e-12
        row = new
        if done:
            break
    inter = off - row[:, None] - col[None, :]
    diag = np.full(len(x), np.nanmean(np.diag(x)))
    return _Additive(col, row, inter, diag, np.diag(x) - diag)


def _carry(fits: dict[str, _Additive]) -> dict[str, np.ndarray]:
    """Per model, the T×T correction carried over from the donors of each source (0 without donors).

    Each part (source effect, interaction, in-task residual) is divided by its model's RMS; a source's
    feature is the mean of its donors' standardised values; one slope per part, through the origin over
    every (model, observed source) with a donor, maps the feature back to the model's own scale.
    """
    parts = {m: {"row": f.row, "inter": f.inter, "diag": f.diag_res} for m, f in fits.items()}
    scale = {m: {p: _rms(v) for p, v in ps.items()} for m, ps in parts.items()}
    std = {m: {p: v / scale[m][p] if scale[m][p] > 0 else np.full_like(v, np.nan) for p, v in ps.items()}
           for m, ps in parts.items()}
    feature = {m: {p: _donor_mean([std[o][p] for o in fits if o != m], std[m][p].shape) for p in _PARTS}
               for m in fits}
    slope = {p: _slope(np.concatenate([feature[m][p].ravel() for m in fits]),
                       np.concatenate([std[m][p].ravel() for m in fits])) for p in _PARTS}
    out = {}
    for m in fits:
        carried = {p: np.nan_to_num(slope[p] * scale[m][p] * feature[m][p]) for p in _PARTS}
        out[m] = np.where(np.eye(len(fits[m].col), dtype=bool), np.diag(carried["diag"]),
                          carried["row"][:, None] + carried["inter"])
    return out


def _donor_mean(values: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """Element-wise mean over the donors that have a value; NaN where none has."""
    return _nanmean(np.stack(values), axis=0) if values else np.full(shape, np.nan)


def _slope(feature: np.ndarray, target: np.ndarray) -> float:
    """Least-squares slope through the origin over the pairs where both are known; 0 without any."""
    ok = ~np.isnan(feature) & ~np.isnan(target)
    denominator = float(feature[ok] @ feature[ok])
    return float(feature[ok] @ target[ok]) / denominator if denominator > 0 else 0.0


def _lowrank(fits: dict[str, _Additive]) -> dict[str, np.ndarray]:
    """Soft-impute of the source × (model, target | in-task) matrix of standardised additive residuals."""
    blocks, scales = [], {}
    for m, f in fits.items():
        z = f.row[:, None] + f.inter
        scales[m] = (_rms(z) or 1.0, _rms(f.diag_res) or 1.0)
        blocks.append(np.column_stack([z / scales[m][0], f.diag_res / scales[m][1]]))
    filled = _soft_impute(np.hstack(blocks))
    out, start = {}, 0
    for m, (s_off, s_diag) in scales.items():
        size = len(fits[m].col)
        block = filled[:, start:start + size + 1]
        start += size + 1
        out[m] = np.where(np.eye(size, dtype=bool), np.diag(block[:, size] * s_diag), block[:, :size] * s_off)
    return out


def _soft_impute(w: np.ndarray, iterations: int = 500, tol: float = 1e-7) -> np.ndarray:
    known = ~np.isnan(w)
    if not known.any():
        return np.zeros_like(w)
    threshold = _LOWRANK_SHRINK * np.linalg.norm(np.where(known, w, 0.0), 2)
    low = np.zeros_like(w)
    for _ in range(iterations):
        u, s, vt = np.linalg.svd(np.where(known, w, low), full_matrices=False)
        new = (u * np.maximum(s - threshold, 0.0)) @ vt
        if np.max(np.abs(new - low)) < tol:
            return new
        low = new
    return low


def _donors(means: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    seen = {m: _observed(x) for m, x in means.items()}
    return {m: sum((seen[o].astype(int) for o in means if o != m), np.zeros(len(x), dtype=int))
            for m, x in means.items()}


# ---------------------------------------------------------------------------------------------------------
# Calibration


def _spreads(means: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per model and kind, the sd of the observed values around the column fit (needs two observed rows);
    a model with fewer takes the mean over the other models."""
    own = {m: _spread(x) for m, x in means.items()}
    out = {}
    for m in means:
        out[m] = {}
        for k in KINDS:
            others = [own[o][k] for o in means if not math.isnan(own[o][k])]
            out[m][k] = own[m][k] if not math.isnan(own[m][k]) else (float(np.mean(others)) if others else math.nan)
    return out


def _spread(x: np.ndarray) -> dict[str, float]:
    observed = _observed(x)
    n = int(observed.sum())
    if n < 2:
        return {k: math.nan for k in KINDS}
    off = _off(x)[observed]
    z = off - _nanmean(off, axis=0)
    return {"off": float(np.sqrt(np.nanmean(z**2) * n / (n - 1))),
            "diag": float(np.std(np.diag(x)[observed], ddof=1))}


def _calibrate(means: dict[str, np.ndarray], method: str, spread: dict[str, dict[str, float]],
               level: float) -> dict[tuple[str, bool], tuple[float, int]]:
    """Leave-one-row-out scores |residual| / spread, pooled over models, and their conformal quantiles."""
    scores: dict[tuple[str, bool], list[np.ndarray]] = {(k, i): [] for k in KINDS for i in (False, True)}
    donors = _donors(means)
    for model, x in means.items():
        rows = np.flatnonzero(_observed(x))
        if len(rows) < 2:
            continue
        for r in rows:
            hidden = dict(means)
            hidden[model] = x.copy()
            hidden[model][r] = np.nan
            residual = np.abs(_predict(hidden, method)[model][r] - x[r])
            informed = method in _READS_DONORS and donors[model][r] > 0
            with np.errstate(divide="ignore", invalid="ignore"):        # a zero spread gives no score
                scores[("off", informed)].append(np.delete(residual, r) / spread[model]["off"])
                scores[("diag", informed)].append(residual[r:r + 1] / spread[model]["diag"])
    pooled = {key: np.concatenate(v) if v else np.zeros(0) for key, v in scores.items()}
    out = {}
    for kind, informed in scores:
        group = pooled[(kind, informed)]
        if not _enough(len(group), level):
            group = np.concatenate([pooled[(kind, False)], pooled[(kind, True)]])
        out[(kind, informed)] = (_conformal(group, level), len(group))
    return out


def _enough(n: int, level: float) -> bool:
    return n > 0 and math.ceil((n + 1) * level) <= n


def _conformal(scores: np.ndarray, level: float) -> float:
    """The ⌈(n+1)·level⌉-th smallest score (the largest when n is too small for the level); NaN without any."""
    scores = np.sort(scores[~np.isnan(scores)])
    if len(scores) == 0:
        return math.nan
    return float(scores[min(math.ceil((len(scores) + 1) * level), len(scores)) - 1])


# ---------------------------------------------------------------------------------------------------------
# Output


def _half_widths(fit: _Fit, model: str) -> tuple[np.ndarray, np.ndarray]:
    """(T×T half-widths, T×T calibration_n with -1 on observed cells)."""
    grid, size = fit.grids[model], len(fit.tasks)
    diagonal = np.eye(size, dtype=bool)
    half = np.zeros((size, size))
    used = np.full((size, size), -1)
    for i in range(size):
        if grid.count[i].max() > 0:
            half[i] = _seed_widths(fit, model, i, grid.count[i]) / 2
            continue
        informed = fit.method in _READS_DONORS and fit.donors[model][i] > 0
        for kind, cells in (("off", ~diagonal[i]), ("diag", diagonal[i])):
            q, n = fit.quantile[(kind, informed)]
            half[i, cells], used[i, cells] = q * fit.spread[model][kind], n
    return half, used


def _seed_widths(fit: _Fit, model: str, i: int, k: np.ndarray | int) -> np.ndarray:
    """Interval widths of row i when its cells rest on k of the model's S seeds (0 for k = S)."""
    grid, size = fit.grids[model], len(fit.tasks)
    seeds = len(grid.seeds)
    k = np.broadcast_to(np.asarray(k), (size,))
    sigma = np.where(np.arange(size) == i, grid.sigma["diag"], grid.sigma["off"])
    z = NormalDist().inv_cdf((1 + fit.level) / 2)
    with np.errstate(invalid="ignore"):
        width = 2 * z * sigma * np.sqrt(np.maximum(seeds - k, 0) / (seeds * k))
    return np.where(k >= seeds, 0.0, width)


def _widths(fit: _Fit, model: str) -> np.ndarray:
    return 2 * _half_widths(fit, model)[0]


def _donor_gain(fit: _Fit, model: str, i: int) -> float:
    """Width removed from the same source's unobserved, donor-less rows in other models once it is run here."""
    if fit.method not in _READS_DONORS:
        return 0.0
    gain = 0.0
    for other, grid in fit.grids.items():
        if other == model or grid.count[i].max() > 0 or fit.donors[other][i] > 0:
            continue
        for kind, n_cells in (("off", len(fit.tasks) - 1), ("diag", 1)):
            before, after = fit.quantile[(kind, False)][0], fit.quantile[(kind, True)][0]
            gain += n_cells * 2 * max(before - after, 0.0) * fit.spread[other][kind]
    return float(np.nan_to_num(gain))


def _model_frame(fit: _Fit, model: str) -> pl.DataFrame:
    grid, size = fit.grids[model], len(fit.tasks)
    observed = np.repeat(grid.count.max(axis=1, keepdims=True) > 0, size, axis=1)
    value = np.where(observed, grid.mean, fit.pred[model])
    half, used = _half_widths(fit, model)
    predicted_by = np.full(size, fit.method, dtype=object)
    if fit.method in _READS_DONORS:
        predicted_by[fit.donors[model] == 0] = "additive"
    method = np.where(observed, "observed", predicted_by[:, None])
    sources, targets = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    tasks = np.array(fit.tasks)
    return pl.DataFrame({
        "model": model, "source_task": tasks[sources.ravel()], "target_task": tasks[targets.ravel()],
        "pgf": value.ravel(), "observed": observed.ravel(), "n_seeds": grid.count.ravel().astype(np.int64),
        "method": method.ravel().astype(str), "donors": np.repeat(fit.donors[model], size).astype(np.int64),
        "ci_low": (value - half).ravel(), "ci_high": (value + half).ravel(),
        "calibration_n": pl.Series([None if u < 0 else int(u) for u in used.ravel()], dtype=pl.Int64),
        "level": fit.level,
    })


# ---------------------------------------------------------------------------------------------------------
# Small numerics


def _observed(x: np.ndarray) -> np.ndarray:
    return ~np.isnan(x).all(axis=1)


def _off(x: np.ndarray) -> np.ndarray:
    return np.where(np.eye(len(x), dtype=bool), np.nan, x)


def _compose(col: np.ndarray, diag: np.ndarray) -> np.ndarray:
    """T×T matrix with every row `col` off the diagonal and `diag` on it."""
    return np.where(np.eye(len(col), dtype=bool), np.diag(diag), np.broadcast_to(col, (len(col), len(col))))


def _nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():             # all-NaN slices are NaN, quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=axis)


def _rms(v: np.ndarray) -> float:
    v = v[~np.isnan(v)]
    return float(np.sqrt(np.mean(v**2))) if len(v) else 0.0
