"""W&B, in one place: one run per cell or reduce, under outputs/<sweep>/wandb/, offline unless configured.

W&B trouble never fails a job: an online run that cannot reach the service falls back to offline, a run that
cannot start at all (an unwritable folder, a broken install) logs nothing, and every later call that raises is
logged once and dropped (`Run`), with whatever it imports from wandb or computes for it; `never_fatal` guards a
whole W&B step of a caller the same way. Run ids are deterministic, so a re-run or a requeued cell resumes its run,
and the reducer can write each cell's PGF into that cell's run.

What a cell run holds (the dashboard, transfer/dashboard.py, reads these keys):
- tags `model:`, `source:`, `seed:`, `data:`, `data_revision:`; top-level config `sweep`, `model`, `family`,
  `source_task`, `seed`, `data_source`, `config_hash` (groupable in the W&B UI) and the whole spec;
- history `train/loss`, `train/learning_rate`, `train/grad_norm`, `train/step_time` against `train/global_step`,
  logged live while the Trainer runs;
- summary `eval/<T>/accuracy`, `eval/<T>/stderr`, `eval/<T>/chance`, `eval/<T>/accuracy_raw`,
  `eval/<T>/unparsed`, `eval/<T>/top_letter_share`, `eval/mean_accuracy`, `status`, and after the reducer
  `pgf/<T>`, `pgf/<T>/ci_low`, `pgf/<T>/ci_high`, `dacc/<T>`, `pgf/mean_offdiag`;
- define_metric: `train/*`, `eval/*`, `pgf/*` and `dacc/*` against `train/global_step`, summaries the last value;
- the table `eval/letters` (the share of each predicted letter per target) and the artifact
  `cell-<sweep>-<model>-<source>-seed<k>` (its scores and predictions).
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl

from transfer import timing
from transfer.spec import WandbSpec, safe_name

log = logging.getLogger("transfer")
TRAIN_STEP = "train/global_step"
CELL_VALUES = ("eval/*", "pgf/*", "dacc/*")   # one value per cell, taken at the end of its training
ARTIFACT_NAME_MAX = 128                        # W&B's limit; names hold letters, digits, '-', '_' and '.'


def run_id(*parts: object) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()[:16]


def artifact_name(sweep: str, model: str, source: str, seed: int) -> str:
    """The cell's artifact, unique per sweep in a project: `cell-<sweep>-<model>-<source>-seed<k>` (safe names
    only, so valid for W&B); a name over W&B's 128 characters keeps its start and ends in a hash of the whole."""
    name = f"cell-{sweep}-{model}-{source}-seed{seed}"
    if len(name) <= ARTIFACT_NAME_MAX:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:16]
    return f"{name[:ARTIFACT_NAME_MAX - len(digest) - 1]}-{digest}"


def _warn_once(warned: set[str], what: str, err: Exception) -> None:
    if what not in warned:
        warned.add(what)
        log.warning("W&B %s failed (%s: %s); the job goes on", what, type(err).__name__,
                    str(err).splitlines()[0] if str(err) else "")


@contextmanager
def never_fatal(what: str) -> Iterator[None]:
    """A W&B step (its own computing included) whose failure is logged and dropped; the body stops there.
    KeyboardInterrupt and SystemExit (a preempted job) pass through."""
    try:
        yield
    except Exception as err:   # noqa: BLE001 - W&B trouble must never fail the job
        _warn_once(set(), what, err)


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
        return bool(self._call("settings", lambda: getattr(self.run.settings, "_offline", False)))

    def _call(self, what: str, fn: Callable[[], object]) -> object:
        """`fn()` when the run is active; any exception is logged (once per `what`) and gives None. Whatever
        a step needs from wandb or computes for it happens inside `fn`, so a broken install fails here too."""
        if self.run is None:
            return None
        with timing.timed("wandb"):
            try:
                return fn()
            except Exception as err:   # noqa: BLE001 - W&B trouble must never fail the job
                _warn_once(self._warned, what, err)
                return None

    def log(self, data: dict) -> None:
        self._call("log", lambda: self.run.log(data))

    def summarize(self, data: dict) -> None:
        self._call("summary", lambda: self.run.summary.update(data))

    def define_metrics(self) -> None:
        """`train/*`, and the evaluation and PGF keys (one value per cell, at the end of its training), against the
        Trainer's global step. Their summary is wandb's default, the last value as it is: an explicit summary op
        (even "last") makes wandb-core nest the value under the op's name ({"last": v}), which no panel reads."""
        def define() -> None:
            self.run.define_metric(TRAIN_STEP)
            for pattern in ("train/*", *CELL_VALUES):
                self.run.define_metric(pattern, step_metric=TRAIN_STEP)
        self._call("define_metric", define)

    def log_table(self, key: str, frame: pl.DataFrame | Callable[[], pl.DataFrame]) -> None:
        """A table under `key`; `frame` may be a function making it (then made inside the guard)."""
        def log_it() -> None:
            import wandb

            df = frame() if callable(frame) else frame
            self.run.log({key: wandb.Table(columns=df.columns, data=[list(r) for r in df.iter_rows()])})
        self._call(f"table {key}", log_it)

    def log_images(self, prefix: str, paths: list[Path]) -> None:
        """Each PNG under `<prefix>/<its stem>`."""
        def log_it() -> None:
            import wandb

            self.run.log({f"{prefix}/{p.stem}": wandb.Image(str(p)) for p in paths})
        self._call(f"images {prefix}", log_it)

    def log_html(self, key: str, path: Path) -> None:
        """An HTML file (a report) under `key`."""
        def log_it() -> None:
            import wandb

            self.run.log({key: wandb.Html(Path(path).read_text())})
        self._call(f"html {key}", log_it)

    def log_artifact(self, name: str, kind: str, files: list[Path], metadata: dict | None = None) -> None:
        def log_it() -> None:
            import wandb

            artifact = wandb.Artifact(name, type=kind, metadata=metadata or {})
            for file in files:
                artifact.add_file(str(file))
            self.run.log_artifact(artifact)
        self._call("artifact", log_it)

    def use_artifact(self, name: str) -> None:
        """Record that this run read the artifact `name` (lineage). wandb refuses use_artifact in offline mode,
        with a name or a locally built Artifact alike (`TypeError`), so offline this records nothing and the
        caller lists its inputs in its own artifact's metadata (docs/wandb.md)."""
        if not self.offline:
            self._call("use_artifact", lambda: self.run.use_artifact(f"{name}:latest"))

    def finish(self, exit_code: int = 0) -> None:
        self._call("finish", lambda: self.run.finish(exit_code=exit_code))


def _init(wandb, mode: str, kwargs: dict):
    settings = wandb.Settings(silent=True, console="off", init_timeout=float(kwargs["init_timeout"]))
    return wandb.init(mode=mode, settings=settings, **{k: v for k, v in kwargs.items() if k != "init_timeout"})


def open_run(wcfg: WandbSpec | None, *, sweep_dir: Path, group: str, job_type: str, name: str, run_key: str,
             config: dict | Callable[[], dict], tags: list[str] | Callable[[], list[str]] = ()) -> Run:
    """Start (or resume) a run; None, or any failure to start one, gives an inactive Run. `config` and `tags` may
    be functions making them, called only for an active run and inside the guard."""
    if wcfg is None or wcfg.mode == "disabled":
        return Run(None)
    with timing.timed("wandb"):
        try:
            import wandb

            (sweep_dir / "wandb").mkdir(parents=True, exist_ok=True)
            os.environ.setdefault("WANDB_SILENT", "true")
            kwargs = dict(project=wcfg.project, entity=wcfg.entity, group=group, job_type=job_type, name=name,
                          id=run_id(group, run_key), resume="allow", dir=str(sweep_dir),
                          config=config() if callable(config) else config,
                          tags=list(tags() if callable(tags) else tags), reinit="finish_previous",
                          init_timeout=wcfg.init_timeout)
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
                with never_fatal("teardown"):
                    wandb.teardown()   # the failed run still holds its id in the W&B service ("run ID ... is in use")
    return Run(None)


def has_credentials() -> bool:
    """Whether W&B can log in here: an API key, an identity token file, or wandb's netrc entry for its host."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    try:
        import wandb
        from wandb.sdk.lib.wbauth.wbnetrc import read_netrc_auth  # wandb's own netrc lookup (host, NETRC)

        return bool(read_netrc_auth(host=os.environ.get("WANDB_BASE_URL") or wandb.Settings().base_url))
    except Exception:   # noqa: BLE001 - an unreadable or malformed netrc (or a wandb without this helper): no login
        return False


def command_options(argv: list[str], prog: str, description: str, options: dict) -> dict:
    """The KEY=VALUE arguments of a W&B command (transfer.dashboard, transfer.sync) over the defaults `options`;
    `sweep` must be one folder name (as transfer.run's) and `outputs` a folder. Bad ones raise ValueError (one line).
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=", ".join(f"{k}=..." for k in options))
    options = dict(options)
    for item in parser.parse_args(argv).overrides:
        key, sep, value = item.partition("=")
        if not sep or key not in options:
            raise ValueError(f"unknown argument {item!r}; expected KEY=VALUE with KEY in {', '.join(options)}")
        options[key] = value or None
    sweep, outputs = options.get("sweep"), options.get("outputs")
    if sweep is not None and (problem := safe_name(sweep)):
        raise ValueError(f"sweep={sweep!r}: expected {problem}")
    if outputs is not None and Path(outputs).exists() and not Path(outputs).is_dir():
        raise ValueError(f"outputs={outputs!r}: expected a folder holding sweeps (this path is a file)")
    return options


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


def log_cell_results(run: Run, scores: pl.DataFrame, predictions: pl.DataFrame, artifact: str, files: list[Path],
                     metadata: dict) -> None:
    """What a finished cell logs (after its records are written): the summary, the scores and letters tables and
    its artifact. Never raises, its computing included: a failing step is logged and the next one runs."""
    if not run.active:
        return
    with never_fatal("summary"):
        run.summarize(cell_summary(scores, predictions))
    run.log_table("scores", lambda: scores.select("target_task", "n", "correct", "accuracy", "accuracy_raw",
                                                  "chance"))
    run.log_table("eval/letters", lambda: letter_shares(predictions))
    run.log_artifact(artifact, "cell-results", files, metadata)


def cell_summary(scores: pl.DataFrame, predictions: pl.DataFrame) -> dict:
    """Summary values of a finished cell: per target accuracy, its standard error and chance, raw accuracy,
    unparsed answers and the share of the most predicted letter among all its questions (1.0: the model answers
    one letter to every question)."""
    out: dict = {"status": "done", "eval/mean_accuracy": float(scores["accuracy"].mean())}
    letters = letter_shares(predictions)
    for row in scores.iter_rows(named=True):
        key, p, n = f"eval/{row['target_task']}", row["accuracy"], row["n"]
        out.update({f"{key}/accuracy": p, f"{key}/stderr": math.sqrt(p * (1 - p) / n) if n else None,
                    f"{key}/chance": row["chance"], f"{key}/accuracy_raw": row.get("accuracy_raw"),
                    f"{key}/unparsed": row.get("unparsed")})
    for row in letters.iter_rows(named=True):
        out[f"eval/{row['target_task']}/top_letter_share"] = max(
            (v for k, v in row.items() if k not in ("target_task", "unparsed")), default=0.0)
    return out


def letter_shares(predictions: pl.DataFrame) -> pl.DataFrame:
    """Per target, the share of its questions answered with each letter (option 0 is A), one column per letter
    predicted anywhere, then `unparsed` (generated answers without a letter) when there are any."""
    named = predictions.with_columns(
        pl.when(pl.col("predicted") < 0).then(pl.lit("unparsed"))
        .otherwise(pl.col("predicted").map_elements(lambda i: chr(ord("A") + i), return_dtype=pl.String))
        .alias("letter"))
    shares = named.group_by("target_task", "letter").len().with_columns(
        (pl.col("len") / pl.col("len").sum().over("target_task")).alias("share"))
    wide = shares.pivot(on="letter", index="target_task", values="share").fill_null(0.0)
    letters = sorted(c for c in wide.columns if c not in ("target_task", "unparsed"))
    return wide.select("target_task", *letters, *(["unparsed"] if "unparsed" in wide.columns else [])).sort(
        "target_task")


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
