"""W&B, in one place: one run per cell or reduce, under outputs/<sweep>/, offline unless configured.

An online run that cannot reach the service falls back to offline and never fails the job for it
(`make sync` uploads offline runs later). Run ids are deterministic, so a re-run resumes its run.
"""
from __future__ import annotations

import hashlib
import logging
import os
from contextlib import contextmanager
from pathlib import Path

import polars as pl

from transfer import timing
from transfer.spec import WandbSpec

log = logging.getLogger("transfer")


def run_id(*parts: object) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()[:16]


def _init(wandb, mode: str, **kwargs):
    settings = wandb.Settings(silent=True, console="off", init_timeout=float(kwargs.pop("init_timeout")))
    return wandb.init(mode=mode, settings=settings, **kwargs)


@contextmanager
def wandb_run(wcfg: WandbSpec | None, *, sweep_dir: Path, group: str, job_type: str, name: str, run_key: str,
              config: dict):
    """Open a W&B run (None: a disabled one, e.g. on ranks other than 0); finish it, failed if the body raises."""
    with timing.timed("wandb"):
        import wandb

        sweep_dir.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("WANDB_SILENT", "true")
        mode = wcfg.mode if wcfg else "disabled"
        kwargs = dict(project=wcfg.project if wcfg else "transfer", entity=wcfg.entity if wcfg else None, group=group,
                      job_type=job_type, name=name, id=run_id(group, run_key), resume="allow", dir=str(sweep_dir),
                      config=config, reinit="finish_previous", init_timeout=wcfg.init_timeout if wcfg else 60)
        try:
            run = _init(wandb, mode, **kwargs)
        except Exception as err:   # noqa: BLE001 - any failure to reach the service
            if mode != "online":
                raise
            log.warning("W&B online init failed (%s); logging offline instead", str(err).splitlines()[0])
            wandb.teardown()   # the failed run still holds its id in the W&B service ("run ID ... is in use")
            run = _init(wandb, "offline", **kwargs)
    try:
        yield run
    except BaseException:
        with timing.timed("wandb"):
            try:
                run.finish(exit_code=1)
            except Exception as err:   # noqa: BLE001 - the W&B service may be gone (e.g. a preempted job's step was signalled)
                log.warning("could not finish the W&B run (%s: %s)", type(err).__name__, err)
        raise   # the body's exception, never one from W&B (submitit's preemption exit must stay a SystemExit)
    with timing.timed("wandb"):
        run.finish()


def log_table(run, key: str, df: pl.DataFrame) -> None:
    import wandb

    with timing.timed("wandb"):
        run.log({key: wandb.Table(columns=df.columns, data=[list(r) for r in df.iter_rows()])})
