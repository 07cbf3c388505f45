"""One cell of the grid, end to end: base model -> LoRA finetune on the source task -> evaluate every target
-> record (predictions, then scores, atomically) and log to W&B.

A finished cell (scores present, same config_hash) is skipped; a finished adapter is reused, and an
interrupted finetune resumes from its last Trainer checkpoint. A `none` cell copies the results of a finished
`none` cell of another seed (same config and base), since the base model does not depend on the seed
(`overwrite=true` evaluates it again).
A cell that raises leaves FAILED.json.
"""
from __future__ import annotations

import logging
import shutil
import socket
import time
import traceback
from pathlib import Path

import polars as pl
from omegaconf import DictConfig, OmegaConf
from peft import PeftModel

from transfer import distributed, timing
from transfer.atomic import write_json, write_parquet
from transfer.data.splits import TaskData, params_key
from transfer.evaluate import TaskResult, check_options, evaluate_targets, for_scoring
from transfer.models.base import base_checkpoint
from transfer.models.encode import EncodedCache
from transfer.models.families import check_family, load_pretrained
from transfer.progress import Progress
from transfer.records import (FAILED, PREDICTIONS, SCORE_SCHEMA, SCORES, cell_dir, config_hash, finished_hash,
                              git_commit, now_iso)
from transfer.tasks import BASELINE, TASK_NAMES, TASKS, get_task
from transfer.tracking import log_table, wandb_run
from transfer.train import TrainStats, finetune

log = logging.getLogger("transfer")
SPLIT = "split.json"   # which BLINK val questions a holdout cell trained and evaluated on
_ENCODED: dict[str, EncodedCache] = {}   # the current model's encoded eval sets, reused by the next cells


class StaleCellError(ValueError):
    """A finished cell was computed with another configuration."""


def _encoded_cache(cache_dir: Path, checkpoint: str, processor, model: dict, data_root: Path) -> EncodedCache:
    key = params_key({"checkpoint": checkpoint, "prefix": model["answer_prefix"], "data": str(data_root)})
    if key not in _ENCODED:
        _ENCODED.clear()
        _ENCODED[key] = EncodedCache(cache_dir / "encoded" / key, processor, model["family"], model["answer_prefix"])
    return _ENCODED[key]


def _finetuned(loaded, cfg: DictConfig, data: TaskData, encoded: EncodedCache, cell: Path) -> tuple:
    """The model after LoRA on the source task (reusing a finished adapter), and its training stats."""
    source, adapter = cfg.source_task.name, cell / "adapter"
    if (adapter / "adapter_config.json").exists():
        log.info("reusing finished adapter %s", adapter)
        return PeftModel.from_pretrained(loaded.model, adapter), TrainStats(0, 0, 0.0)
    limit = cfg.data.train_limit
    examples = encoded.get(f"{source}-train-{limit}", lambda: data.train(source), remember=False)
    model, stats = finetune(loaded.model, examples, family=cfg.model.family, tokenizer=loaded.tokenizer,
                            train=OmegaConf.to_container(cfg.train, resolve=True), out_dir=cell, seed=cfg.seed,
                            lora=OmegaConf.to_container(cfg.model.lora, resolve=True),
                            desc=f"{cfg.model.name}/{source}/seed{cfg.seed}")
    if distributed.is_main():   # every process trained (DeepSpeed); one saves
        with timing.timed("io"):
            tmp = cell / "adapter.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            model.save_pretrained(tmp)
            tmp.rename(adapter)
            shutil.rmtree(cell / "checkpoints", ignore_errors=True)
    distributed.barrier()
    return model, stats


def _frames(cfg: DictConfig, checkpoint: str, results: list[TaskResult], stats: TrainStats, chash: str):
    common = dict(sweep=cfg.sweep, model=cfg.model.name, source_task=cfg.source_task.name, seed=int(cfg.seed))
    commit, created = git_commit(), now_iso()
    scores = [{**common, "checkpoint": checkpoint, "data_source": cfg.data.source, "calibration": cfg.eval.calibration,
               "target_task": r.task, "n": len(r.gold), "correct": sum(r.correct),
               "accuracy": sum(r.correct) / len(r.gold), "chance": get_task(r.task).chance,
               "train_examples": stats.examples, "train_steps": stats.steps, "train_seconds": stats.seconds,
               "eval_seconds": r.seconds, "config_hash": chash, "git_commit": commit, "created_at": created}
              for r in results]
    predictions = pl.DataFrame([
        {**common, "idx": idx, "target_task": r.task, "gold": g, "predicted": p, "correct": c, "loglik": ll}
        for r in results for idx, g, p, c, ll in zip(r.idx, r.gold, r.predicted, r.correct, r.loglik)
    ], schema_overrides={"loglik": pl.List(pl.Float64)})
    return pl.DataFrame(scores, schema=SCORE_SCHEMA), predictions


def _record_holdout(data: TaskData, source: str, targets: list[str], cell: Path) -> None:
    """BLINK without data.train_root: val is split by idx hash; warn, and record which questions are which."""
    fraction = data.data["holdout_train_fraction"]
    train = [q.idx for q in data.train(source)] if source != BASELINE else []
    write_json({"holdout": True, "train_fraction": fraction, "root": str(data.root),
                "method": "per task, stratified by answer: sha256(task/idx) order, first round(fraction*n) train",
                "train_idx": {source: train} if train else {},
                "eval_idx": {t: [q.idx for q in data.eval(t)] for t in targets}}, cell / SPLIT)
    log.warning("data.train_root is not set: BLINK val is split by idx hash into training (%.0f%%) and evaluation "
                "questions, disjoint per task; recorded in %s", 100 * fraction, cell / SPLIT)


def _baseline_of_another_seed(cell: Path, chash: str, checkpoint: str, calibration: str) -> list[TaskResult] | None:
    """The results of a finished `none` cell of another seed with this config and checkpoint, if there is one: the
    base model and its evaluation do not depend on the finetuning seed, so they are copied, not computed again."""
    for other in sorted(cell.parent.glob("seed=*")):
        if other == cell or finished_hash(other) != chash:
            continue
        scores = pl.read_parquet(other / SCORES)
        if scores["checkpoint"][0] != checkpoint:
            continue
        log.info("the base model's evaluation does not depend on the seed: reusing %s", other)
        predictions = pl.read_parquet(other / PREDICTIONS)
        return [TaskResult(task, rows["idx"].to_list(), rows["gold"].to_list(), rows["loglik"].to_list(), 0.0,
                           calibration)
                for task in scores["target_task"] for rows in [predictions.filter(pl.col("target_task") == task)]]
    return None


def _finetune_and_evaluate(cfg: DictConfig, model_cfg: dict, data: TaskData, targets: list[str], checkpoint: str,
                           cell: Path, run, name: str) -> tuple:
    """Load the base, finetune it on the source task (none: as it is), score every target: (results, stats)."""
    with timing.timed("model_load"):
        loaded = load_pretrained(cfg.model.family, checkpoint, cfg.model.dtype)
    encoded = _encoded_cache(Path(cfg.paths.cache), checkpoint, loaded.processor, model_cfg, data.root)
    eval_sets = {t: encoded.get(f"{t}-eval-{cfg.data.eval_limit}", lambda t=t: data.eval(t)) for t in targets}
    model, stats = loaded.model, TrainStats(0, 0, 0.0)
    if cfg.source_task.name != BASELINE:
        model, stats = _finetuned(loaded, cfg, data, encoded, cell)
        for step, loss in enumerate(stats.losses):
            run.log({"train/loss": loss, "train/log_step": step})
    progress = Progress(len(targets), f"eval {name}", unit="task")
    results = evaluate_targets(for_scoring(model, cfg.eval.merge_lora), eval_sets, cfg.model.family,
                               loaded.tokenizer.pad_token_id, cfg.eval.batch_size, progress, cfg.eval.calibration)
    progress.close()   # every process evaluated (ZeRO-3 forwards need all of them); rank 0 records
    return results, stats


def _compute(cfg: DictConfig, cell: Path, chash: str) -> pl.DataFrame:
    cache_dir = Path(cfg.paths.cache)
    targets = list(cfg.targets or TASK_NAMES)
    data = TaskData(OmegaConf.to_container(cfg.data, resolve=True), cache_dir)
    if data.holdout and distributed.is_main():
        _record_holdout(data, cfg.source_task.name, targets, cell)
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    checkpoint = base_checkpoint(model_cfg, OmegaConf.to_container(cfg.base, resolve=True),
                                 OmegaConf.to_container(cfg.train, resolve=True), data, TASK_NAMES, cache_dir)
    reused = (_baseline_of_another_seed(cell, chash, checkpoint, cfg.eval.calibration)
              if cfg.source_task.name == BASELINE and not cfg.overwrite else None)   # overwrite: evaluate again
    name = f"{cfg.model.name}/{cfg.source_task.name}/seed{cfg.seed}"
    wcfg = OmegaConf.to_container(cfg.wandb, resolve=True)
    if not distributed.is_main():
        wcfg["mode"] = "disabled"   # one W&B run per cell, from rank 0
    with wandb_run(wcfg, sweep_dir=cell.parents[3], group=cfg.sweep,
                   job_type="cell", name=name, run_key=name,
                   config={**OmegaConf.to_container(cfg, resolve=True), "config_hash": chash}) as run:
        results, stats = ((reused, TrainStats(0, 0, 0.0)) if reused is not None
                          else _finetune_and_evaluate(cfg, model_cfg, data, targets, checkpoint, cell, run, name))
        scores, predictions = _frames(cfg, checkpoint, results, stats, chash)
        if not distributed.is_main():
            return scores
        with timing.timed("io"):
            write_parquet(predictions, cell / PREDICTIONS)
            write_parquet(scores, cell / SCORES)
        run.log({f"eval/{r['target_task']}/accuracy": r["accuracy"] for r in scores.iter_rows(named=True)})
        log_table(run, "scores", scores.select("target_task", "n", "correct", "accuracy", "chance"))
        run.summary["mean_accuracy"] = float(scores["accuracy"].mean())
    return scores


def run_cell(cfg: DictConfig) -> dict:
    """Run (or skip) the cell named by cfg.model / cfg.source_task / cfg.seed; returns a short summary."""
    check_family(cfg.model.family)
    check_options(cfg.eval.calibration, cfg.eval.merge_lora)
    source = cfg.source_task.name
    if source != BASELINE and source not in TASKS:
        raise ValueError(f"unknown source_task {source!r}; expected one of: {', '.join([BASELINE, *TASK_NAMES])}")
    cell = cell_dir(Path(cfg.paths.outputs) / cfg.sweep, cfg.model.name, source, int(cfg.seed))
    chash, done = config_hash(cfg), finished_hash(cell)
    if done and not cfg.overwrite:
        if done != chash:
            raise StaleCellError(f"cell {cell} was computed with config_hash {done}, the current config has {chash}; "
                                 "pass overwrite=true to recompute it or sweep=<new name> to keep both")
        log.info("skip finished cell %s", cell)
        return {"cell": str(cell), "status": "skipped"}
    if cfg.overwrite:
        for folder in ("adapter", "checkpoints"):
            shutil.rmtree(cell / folder, ignore_errors=True)
        for name in (SCORES, PREDICTIONS):
            (cell / name).unlink(missing_ok=True)
    cell.mkdir(parents=True, exist_ok=True)
    started, started_at, before = time.perf_counter(), time.time(), timing.snapshot()
    try:
        scores = _compute(cfg, cell, chash)
    except BaseException as err:
        if not distributed.is_main():
            raise
        write_json({"cell": str(cell), "error": f"{type(err).__name__}: {err}", "host": socket.gethostname(),
                    "time": now_iso(), "traceback": traceback.format_exc()}, cell / FAILED)
        raise
    distributed.barrier()
    if not distributed.is_main():
        return {"cell": str(cell), "status": "done", "rank": distributed.rank()}
    (cell / FAILED).unlink(missing_ok=True)
    after = timing.snapshot()
    write_json({"started_at": started_at, "wall": time.perf_counter() - started,
                **{k: after[k] - before.get(k, 0.0) for k in after}}, cell / "timings.json")
    mean = float(scores["accuracy"].mean())
    log.info("finished cell %s: mean accuracy %.3f", cell, mean)
    return {"cell": str(cell), "status": "done", "mean_accuracy": mean}
