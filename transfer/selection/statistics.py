"""Statistics of a finished data-selection experiment (the paper's section on data selection).

Input: one row per scored question, columns QUESTION_COLUMNS: target_task (the target the arm was built for),
arm, draw (null unless random), seed, eval_task (the task scored), idx (question id), correct. Every run of a
target's arms is scored on the same questions of each eval task. The bootstrap resamples those questions once per
replicate, shared by all arms (so differences between arms are paired), then each arm's draws and, inside each
draw, its seeds. As with transfer.stats.paired_bootstrap_pgf, resampling the runs as well as the questions is
conservative when runs differ only by question-level noise (that noise is then counted twice);
resample_seeds=False resamples questions and draws only, exact in that case but blind to whole-run effects.
The draws are always resampled: the random arm's target is the mean over all k-mixes, not over the few drawn.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from transfer.analysis.tables import ZERO_TOLERANCE
from transfer.selection.arms import BASE, PGF_ARMS, RANDOM
from transfer.stats import sign_test, wilcoxon_signed_rank

QUESTION_COLUMNS = ("target_task", "arm", "draw", "seed", "eval_task", "idx", "correct")
NO_DRAW = -1   # the draw of an arm that has none, while grouping

# {arm: (draws, seeds, questions) 0/1 correctness} for one (target_task, eval_task)
Block = dict[str, np.ndarray]

ACCURACY_SCHEMA = {"target_task": pl.String, "arm": pl.String, "n_draws": pl.Int64, "n_seeds": pl.Int64,
                   "n_questions": pl.Int64, "accuracy": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64}
VERSUS_SCHEMA = {"target_task": pl.String, "arm": pl.String, "accuracy": pl.Float64, "random_accuracy": pl.Float64,
                 "difference": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64, "percentile": pl.Float64,
                 "n_draws": pl.Int64}
ACROSS_SCHEMA = {"arm": pl.String, "n_targets": pl.Int64, "mean_difference": pl.Float64,
                 "median_difference": pl.Float64, "targets_better": pl.Int64, "n_nonzero": pl.Int64,
                 "sign_p": pl.Float64, "wilcoxon_w": pl.Float64, "wilcoxon_p": pl.Float64}
COLLATERAL_SCHEMA = {"target_task": pl.String, "arm": pl.String, "n_eval_tasks": pl.Int64,
                     "collateral": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64}


def experiment_statistics(frame: pl.DataFrame, n_boot: int = 2000, seed: int = 0, level: float = 0.95,
                          resample_seeds: bool = True) -> dict[str, pl.DataFrame]:
    """All four tables: accuracy, versus_random, across_targets, collateral."""
    accuracy, versus = target_statistics(frame, n_boot, seed, level, resample_seeds=resample_seeds)
    return {"accuracy": accuracy, "versus_random": versus, "across_targets": across_targets(versus),
            "collateral": collateral(frame, n_boot, seed, level, resample_seeds)}


def target_statistics(frame: pl.DataFrame, n_boot: int = 2000, seed: int = 0, level: float = 0.95,
                      compare: tuple[str, ...] = PGF_ARMS,
                      resample_seeds: bool = True) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(accuracy, versus_random) on each target's own questions.

    accuracy: per target and arm, the mean over seeds (and draws) with its bootstrap interval (ACCURACY_SCHEMA).
    versus_random: per target and each `compare` arm present beside `random`, accuracy − the mean over the random
    draws with its paired interval, and the arm's percentile among the draws' seed-mean accuracies, ties counted
    half (VERSUS_SCHEMA).
    """
    blocks, rng = _blocks(frame), np.random.default_rng(seed)
    accuracy, versus = [], []
    for target in sorted({t for t, _ in blocks}):
        if (target, target) not in blocks:
            raise ValueError(f"target {target!r} has no rows scored on itself (eval_task == target_task)")
        block = blocks[target, target]
        reps = _replicates(block, n_boot, rng, resample_seeds)
        for arm, cube in block.items():
            low, high = _interval(reps[arm], level)
            accuracy.append({"target_task": target, "arm": arm, "n_draws": cube.shape[0], "n_seeds": cube.shape[1],
                             "n_questions": cube.shape[2], "accuracy": cube.mean(), "ci_low": low, "ci_high": high})
        if RANDOM not in block:
            continue
        draw_means = block[RANDOM].mean(axis=(1, 2))
        for arm in (a for a in compare if a in block):
            low, high = _interval(reps[arm] - reps[RANDOM], level)
            value = block[arm].mean()
            versus.append({"target_task": target, "arm": arm, "accuracy": value,
                           "random_accuracy": draw_means.mean(), "difference": value - draw_means.mean(),
                           "ci_low": low, "ci_high": high, "percentile": percentile_among(value, draw_means),
                           "n_draws": len(draw_means)})
    return pl.DataFrame(accuracy, schema=ACCURACY_SCHEMA), pl.DataFrame(versus, schema=VERSUS_SCHEMA)


def across_targets(versus: pl.DataFrame) -> pl.DataFrame:
    """Per compared arm, one-sided (greater) sign and Wilcoxon signed-rank tests of arm − mean random over targets.

    Differences within ZERO_TOLERANCE of 0 count as ties (dropped by both tests).
    """
    rows = []
    for arm in versus["arm"].unique(maintain_order=True).to_list():
        d = versus.filter(pl.col("arm") == arm)["difference"].to_numpy()
        d = np.where(np.abs(d) < ZERO_TOLERANCE, 0.0, d)
        better, sign_p, n_nonzero = sign_test(d, "greater")
        w, wilcoxon_p, _ = wilcoxon_signed_rank(d, "greater")
        rows.append({"arm": arm, "n_targets": len(d), "mean_difference": float(d.mean()),
                     "median_difference": float(np.median(d)), "targets_better": better, "n_nonzero": n_nonzero,
                     "sign_p": sign_p, "wilcoxon_w": w, "wilcoxon_p": wilcoxon_p})
    return pl.DataFrame(rows, schema=ACROSS_SCHEMA)


def collateral(frame: pl.DataFrame, n_boot: int = 2000, seed: int = 0, level: float = 0.95,
               resample_seeds: bool = True) -> pl.DataFrame:
    """Per target and arm (base aside), the mean over the other eval tasks of accuracy − base accuracy.

    The interval comes from the paired bootstrap of each eval task, averaged over the eval tasks replicate by
    replicate (COLLATERAL_SCHEMA). Targets scored only on themselves get no rows.
    """
    blocks, rng = _blocks(frame), np.random.default_rng(seed)
    rows = []
    for target in sorted({t for t, _ in blocks}):
        changes: dict[str, list[tuple[float, np.ndarray]]] = {}
        for eval_task in sorted(e for t, e in blocks if t == target and e != target):
            block = blocks[target, eval_task]
            if BASE not in block:
                raise ValueError(f"target {target!r} has no {BASE!r} arm scored on eval task {eval_task!r}")
            reps = _replicates(block, n_boot, rng, resample_seeds)
            for arm in (a for a in block if a != BASE):
                changes.setdefault(arm, []).append((block[arm].mean() - block[BASE].mean(), reps[arm] - reps[BASE]))
        for arm, parts in changes.items():
            low, high = _interval(np.mean([r for _, r in parts], axis=0), level)
            rows.append({"target_task": target, "arm": arm, "n_eval_tasks": len(parts),
                         "collateral": float(np.mean([p for p, _ in parts])), "ci_low": low, "ci_high": high})
    return pl.DataFrame(rows, schema=COLLATERAL_SCHEMA)


def percentile_among(value: float, draws: np.ndarray) -> float:
    """Share of draws below value, ties (within ZERO_TOLERANCE) counted half."""
    draws = np.asarray(draws, dtype=float)
    tied = np.abs(draws - value) <= ZERO_TOLERANCE
    return float(((draws < value) & ~tied).sum() + 0.5 * tied.sum()) / len(draws)


def _interval(replicates: np.ndarray, level: float) -> tuple[float, float]:
    low, high = np.percentile(replicates, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(low), float(high)


def _replicates(block: Block, n_boot: int, rng: np.random.Generator, resample_seeds: bool) -> dict[str, np.ndarray]:
    """(n_boot,) bootstrap accuracies of each arm: questions resampled once per replicate for all arms, then
    each arm's draws, then (unless resample_seeds is False) the seeds inside each draw."""
    n = next(iter(block.values())).shape[2]
    questions = rng.multinomial(n, np.full(n, 1 / n), size=n_boot) / n                      # (B, n)
    out = {}
    for arm, cube in block.items():
        draws, seeds, _ = cube.shape
        runs = (questions @ cube.reshape(draws * seeds, n).T).reshape(n_boot, draws, seeds)
        draw_weights = rng.multinomial(draws, np.full(draws, 1 / draws), size=n_boot) / draws         # (B, D)
        seed_weights = (rng.multinomial(seeds, np.full(seeds, 1 / seeds), size=(n_boot, draws)) / seeds
                        if resample_seeds else np.full((n_boot, draws, seeds), 1 / seeds))          # (B, D, S)
        out[arm] = np.einsum("bds,bd,bds->b", runs, draw_weights, seed_weights)
    return out


def _blocks(frame: pl.DataFrame) -> dict[tuple[str, str], Block]:
    """{(target_task, eval_task): {arm: (draws, seeds, questions) correctness}}, questions sorted by idx."""
    missing = [c for c in QUESTION_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"question frame lacks columns {missing}; expected {list(QUESTION_COLUMNS)}")
    nulls = [c for c in QUESTION_COLUMNS if c != "draw" and frame[c].null_count()]
    if nulls:
        raise ValueError(f"question frame has nulls in {nulls}")
    if frame.height == 0:
        raise ValueError("question frame has no rows")
    runs = (frame.select(QUESTION_COLUMNS)
            .with_columns(pl.col("draw").fill_null(NO_DRAW), pl.col("correct").cast(pl.Float64))
            .group_by("target_task", "eval_task", "arm", "draw", "seed")
            .agg(pl.col("correct").sort_by("idx"), pl.col("idx").sort())
            .sort("target_task", "eval_task", "arm", "draw", "seed"))
    return {(target, eval_task): _block(rows, target, eval_task)
            for (target, eval_task), rows in runs.partition_by("target_task", "eval_task", as_dict=True).items()}


def _block(runs: pl.DataFrame, target: str, eval_task: str) -> Block:
    where = f"target {target!r}, eval task {eval_task!r}"
    questions = runs["idx"].to_list()
    if len(set(questions[0])) != len(questions[0]):
        raise ValueError(f"{where}: a run scores some question twice")
    if any(q != questions[0] for q in questions):
        raise ValueError(f"{where}: the runs are not all scored on the same questions")
    correct = np.array(runs["correct"].to_list(), dtype=float)                           # (runs, n)
    arms, draws = np.array(runs["arm"].to_list()), runs["draw"].to_numpy()
    block = {}
    for arm in dict.fromkeys(arms.tolist()):
        mine = arms == arm
        _, per_draw = np.unique(draws[mine], return_counts=True)
        if (per_draw != per_draw[0]).any():
            raise ValueError(f"{where}: arm {arm!r} has draws with different numbers of seeds {per_draw.tolist()}")
        block[arm] = correct[mine].reshape(len(per_draw), per_draw[0], -1)
    return block
