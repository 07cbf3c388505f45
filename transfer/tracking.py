"""W&B, in one place: one run per cell or reduce, under outputs/<sweep>/wandb/, offline unless configured.

W&B trouble never fails a job: an online run that cannot reach the service falls back to offline, a run that
cannot start at all (an unwritable folder, a broken install) logs nothing, and every later call that raises is
logged once and dropped (`Run`). Run ids are deterministic, so a re-run or a requeued cell resumes its run, and
the reducer can write each cell's PGF into that cell's run.

What a cell run holds (the dashboard, transfer/dashboard.py, reads these keys):
- tags `model:`, `source:`, `seed:`, `data:`, `data_revision:`; top-level config `sweep`, `model`, `family`,
  `source_task`, `seed`, `data_source`, `config_hash` (groupable in the W&B UI) and the whole spec;
- history `train/loss`, `train/learning_rate`, `train/grad_norm`, `train/step_time` against `train/global_step`,
  logged live while the Trainer runs;
- summary `eval/<T>/accuracy`, `eval/<T>/stderr`, `eval/<T>/chance`, `eval/<T>/accuracy_raw`,
  `eval/<T>/unparsed`, `eval/<T>/top_letter_share`, `eval/mean_accuracy`, `status`, and after the reducer
  `pgf/<T>`, `pgf/<T>/ci_low`, `pgf/<T>/ci_high`, `dacc/<T>`, `pgf/mean_offdiag`;
- the table `eval/letters` (the share of each predicted letter per target) and the artifact
  `cell-<model>-<source>-seed<k>` (its scores and predictions).
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
from contextlib import contextmanager
from pathlib import Path

import polars as pl

from transfer import timing
from transfer.spec import WandbSpec

log = logging.getLogger("transfer")
TRAIN_STEP = "train/global_step"


def run_id(*parts: object) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()[:16]


def artifact_name(model: str, source: str, seed: int) -> str:
    return f"cell-{model}-{source}-seed{seed}"


class Run:
    """A W&B run whose calls never raise: a failing call is logged (once per kind) and dropped. `None` inside
    is a run that could not start: every call does nothing."""

    def __init__(self, run) -> None:
        self.run = run
        self._warned: set[str] = set()

    @property
    def active(self) -> bool:
        return self.run is not None

    @property
    def offline(self) -> bool:
        return self.active and bool(getattr(self.run.settings, "_offline", False))

    def _call(self, what: str, fn, *args, **kwargs):
        if self.run is None:
            return None
        with timing.timed("wandb"):
            try:
                return fn(*args, **kwargs)
            except Exception as err:   # noqa: BLE001 - W&B trouble must never fail the job
                if what not in self._warned:
                    self._warned.add(what)
                    log.warning("W&B %s failed (%s: %s); the job goes on", what, type(err).__name__,
                                str(err).splitlines()[0] if str(err) else "")
                return None

    def log(self, data: dict) -> None:
        self._call("log", lambda: self.run.log(data))

    def summarize(self, data: dict) -> None:
        self._call("summary", lambda: self.run.summary.update(data))

    def define_training_metrics(self) -> None:
        """`train/*` plotted against the Trainer's global step; the eval keys are summary values."""
        self._call("define_metric", lambda: (self.run.define_metric(TRAIN_STEP),
                                             self.run.define_metric("train/*", step_metric=TRAIN_STEP)))

    def log_table(self, key: str, df: pl.DataFrame) -> None:
        import wandb

        self._call("table", lambda: self.run.log({key: wandb.Table(columns=df.columns,
                                                                   data=[list(r) for r in df.iter_rows()])}))

    def log_artifact(self, name: str, kind: str, files: list[Path], metadata: dict | None = None) -> None:
        import wandb

        def log_it():
            artifact = wandb.Artifact(name, type=kind, metadata=metadata or {})
            for file in files:
                artifact.add_file(str(file))
            self.run.log_artifact(artifact)
        self._call("artifact", log_it)

    def use_artifact(self, name: str) -> None:
        """Record that this run read the artifact `name` (lineage); offline runs cannot, see docs/wandb.md."""
        if not self.offline:
            self._call("use_artifact", lambda: self.run.use_artifact(f"{name}:latest"))

    def finish(self, exit_code: int = 0) -> None:
        self._call("finish", lambda: self.run.finish(exit_code=exit_code))


def _init(wandb, mode: str, kwargs: dict):
    settings = wandb.Settings(silent=True, console="off", init_timeout=float(kwargs["init_timeout"]))
    return wandb.init(mode=mode, settings=settings, **{k: v for k, v in kwargs.items() if k != "init_timeout"})


def open_run(wcfg: WandbSpec | None, *, sweep_dir: Path, group: str, job_type: str, name: str, run_key: str,
             config: dict, tags: list[str] = ()) -> Run:
    """Start (or resume) a run; None, or any failure to start one, gives an inactive Run."""
    if wcfg is None or wcfg.mode == "disabled":
        return Run(None)
    with timing.timed("wandb"):
        try:
            import wandb

            (sweep_dir / "wandb").mkdir(parents=True, exist_ok=True)
            os.environ.setdefault("WANDB_SILENT", "true")
            kwargs = dict(project=wcfg.project, entity=wcfg.entity, group=group, job_type=job_type, name=name,
                          id=run_id(group, run_key), resume="allow", dir=str(sweep_dir), config=config,
                          tags=list(tags), reinit="finish_previous", init_timeout=wcfg.init_timeout)
        except Exception as err:   # noqa: BLE001 - an unwritable folder, a broken install
            log.warning("W&B unavailable (%s: %s); this run logs nothing", type(err).__name__, err)
            return Run(None)
        for mode in ([wcfg.mode, "offline"] if wcfg.mode == "online" else [wcfg.mode]):
            try:
                return Run(_init(wandb, mode, kwargs))
            except Exception as err:   # noqa: BLE001 - any failure to reach the service or to write
                log.warning("W&B %s init failed (%s)%s", mode, str(err).splitlines()[0] if str(err) else
                            type(err).__name__, "; logging offline instead" if mode == "online" else
                            "; this run logs nothing")
                wandb.teardown()   # the failed run still holds its id in the W&B service ("run ID ... is in use")
    return Run(None)


@contextmanager
def wandb_run(wcfg: WandbSpec | None, **kwargs):
    """`open_run` as a context: the run is finished, marked failed (exit code 1) if the body raises. The body's
    exception is the one that propagates, never one from W&B (submitit's preemption exit must stay a SystemExit)."""
    run = open_run(wcfg, **kwargs)
    try:
        yield run
    except BaseException:
        run.summarize({"status": "failed"})
        run.finish(exit_code=1)
        raise
    run.finish()


def cell_summary(scores: pl.DataFrame, predictions: pl.DataFrame) -> dict:
    """Summary values of a finished cell: per target accuracy, its standard error and chance, raw accuracy,
    unparsed answers and the share of the most predicted letter (1.0: the model answers one letter)."""
    out: dict = {"status": "done", "eval/mean_accuracy": float(scores["accuracy"].mean())}
    letters = letter_shares(predictions)
    for row in scores.iter_rows(named=True):
        key, p, n = f"eval/{row['target_task']}", row["accuracy"], row["n"]
        out.update({f"{key}/accuracy": p, f"{key}/stderr": math.sqrt(p * (1 - p) / n) if n else None,
                    f"{key}/chance": row["chance"], f"{key}/accuracy_raw": row.get("accuracy_raw"),
                    f"{key}/unparsed": row.get("unparsed")})
    for row in letters.iter_rows(named=True):
        out[f"eval/{row['target_task']}/top_letter_share"] = max(v for k, v in row.items() if k != "target_task")
    return out


def letter_shares(predictions: pl.DataFrame) -> pl.DataFrame:
    """Per target, the share of questions answered with each letter (`unparsed`: generated answers without one)."""
    named = predictions.with_columns(
        pl.when(pl.col("predicted") < 0).then(pl.lit("unparsed"))
        .otherwise(pl.col("predicted").map_elements(lambda i: "ABCDE"[i], return_dtype=pl.String)).alias("letter"))
    shares = named.group_by("target_task", "letter").len().with_columns(
        (pl.col("len") / pl.col("len").sum().over("target_task")).alias("share"))
    wide = shares.pivot(on="letter", index="target_task", values="share").fill_null(0.0)
    columns = [c for c in ("A", "B", "C", "D", "E", "unparsed") if c in wide.columns]
    return wide.select("target_task", *columns).sort("target_task")


def pgf_summaries(long: pl.DataFrame, intervals: pl.DataFrame) -> dict[tuple[str, str, int], dict]:
    """Per cell (model, source, seed): its PGF and Δaccuracy per target and the cell's interval bounds."""
    bounds = {(m, s, t): (lo, hi) for m, s, t, lo, hi in
              intervals.select("model", "source_task", "target_task", "ci_low", "ci_high").iter_rows()}
    out: dict[tuple[str, str, int], dict] = {}
    for row in long.iter_rows(named=True):
        cell = (row["model"], row["source_task"], int(row["seed"]))
        target = row["target_task"]
        lo, hi = bounds.get((row["model"], row["source_task"], target), (None, None))
        out.setdefault(cell, {}).update({f"pgf/{target}": row["pgf"], f"pgf/{target}/ci_low": lo,
                                         f"pgf/{target}/ci_high": hi,
                                         f"dacc/{target}": row["accuracy"] - row["base_accuracy"]})
    for cell, values in out.items():
        off = [v for k, v in values.items() if k.count("/") == 1 and k.startswith("pgf/")
               and k != f"pgf/{cell[1]}"]
        values["pgf/mean_offdiag"] = sum(off) / len(off) if off else None
    return out
