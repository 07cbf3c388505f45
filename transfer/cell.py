"""One cell of the grid, as a recipe that reads top to bottom:

    spec -> base model -> finetune on the source task -> evaluate every target -> record

- spec: every key checked once (`CellSpec`); a finished cell (scores present, same config_hash) is skipped, one
  computed with another config is refused;
- base model: the checkpoint (real path) or the embedded tiny model, pretrained once and cached;
- finetune: LoRA on the source task (`none`: no finetune); a finished adapter is reused and an interrupted finetune
  resumes from its last Trainer checkpoint;
- evaluate: every target's eval questions; a `none` cell copies a finished `none` cell of another seed with the
  same config and base model, since the base model does not depend on the seed (`overwrite=true` evaluates it);
- record: predictions, then scores, atomically, and a W&B run. A cell that raises leaves FAILED.json.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
import socket
import time
import traceback
from contextlib import nullcontext
from pathlib import Path

import polars as pl
from omegaconf import DictConfig
from peft import PeftModel

from transfer import distributed, faults, timing
from transfer.atomic import write_json, write_parquet
from transfer.cache import params_key
from transfer.data.mixture import mixture_examples
from transfer.data.splits import TaskData
from transfer.encode import ENCODING, EncodedCache, ImageSource
from transfer.evaluate import TaskResult, evaluate_targets, for_scoring
from transfer.locks import file_lock
from transfer.models.families import load_pretrained
from transfer.progress import Progress
from transfer.records import (
    FAILED,
    PREDICTION_SCHEMA,
    PREDICTIONS,
    SCORE_SCHEMA,
    SCORES,
    cell_dir,
    finished_hash,
    git_commit,
    now_iso,
)
from transfer.spec import CellSpec
from transfer.tasks import BASELINE, TASK_NAMES, get_task
from transfer.tracking import artifact_name, log_cell_results, wandb_run
from transfer.train import TrainStats, finetune

log = logging.getLogger("transfer")
SPLIT = "split.json"   # which BLINK val questions a holdout cell trained and evaluated on
_ENCODED: dict[str, EncodedCache] = {}   # the current model's encoded eval sets, reused by the next cells


class StaleCellError(ValueError):
    """A finished cell was computed with another configuration."""


def run_cell(cfg: DictConfig | CellSpec) -> dict:
    """Run (or skip) the cell named by model / source_task / seed; returns a short summary."""
    spec = cfg if isinstance(cfg, CellSpec) else CellSpec.from_config(cfg)
    cell = cell_dir(spec.sweep_dir, spec.model.name, spec.source, spec.seed)
    chash = spec.config_hash()
    if not spec.overwrite and _skip(cell, chash):
        return {"cell": str(cell), "status": "skipped"}
    cell.mkdir(parents=True, exist_ok=True)
    with file_lock(cell / ".lock", f"cell {spec.name}") if distributed.is_main() else nullcontext():
        if not spec.overwrite and _skip(cell, chash):   # another sweep on this folder finished it meanwhile
            return {"cell": str(cell), "status": "skipped"}
        return _run_locked(spec, cell, chash)


def _skip(cell: Path, chash: str) -> bool:
    """Whether the cell is finished with this config (skip it); a cell finished with another config is refused."""
    done = finished_hash(cell)
    if done and done != chash:
        raise StaleCellError(f"cell {cell} was computed with config_hash {done}, the current config has {chash}; "
                             "pass overwrite=true to recompute it or sweep=<new name> to keep both")
    if done:
        log.info("skip finished cell %s", cell)
    return bool(done)


def _run_locked(spec: CellSpec, cell: Path, chash: str) -> dict:
    """Compute the cell (its lock held): clear what overwrite or a damaged record leaves, compute, record."""
    if spec.overwrite or finished_hash(cell) is None:   # nothing half-written or damaged is trusted
        for name in (SCORES, PREDICTIONS):
            (cell / name).unlink(missing_ok=True)
    if spec.overwrite:
        for folder in ("adapter", "checkpoints"):
            shutil.rmtree(cell / folder, ignore_errors=True)
    started, started_at, before = time.perf_counter(), time.time(), timing.snapshot()
    try:
        scores = _compute(spec, cell, chash)
    except BaseException as err:
        if not distributed.is_main():
            raise
        try:
            write_json({"cell": str(cell), "error": f"{type(err).__name__}: {err}", "host": socket.gethostname(),
                        "time": now_iso(), "traceback": traceback.format_exc()}, cell / FAILED)
        except OSError as marker:   # e.g. the disk is full: the cell's own error is the one to report
            log.warning("could not write %s (%s)", cell / FAILED, marker)
        raise
    distributed.barrier()
    if not distributed.is_main():
        return {"cell": str(cell), "status": "done", "rank": distributed.rank()}
    (cell / FAILED).unlink(missing_ok=True)
    after = timing.snapshot()
    phases = {k: after[k] - before.get(k, 0.0) for k in after}
    wall = time.perf_counter() - started
    write_json({"started_at": started_at, "wall": wall, **phases}, cell / "timings.json")
    mean = float(scores["accuracy"].mean())
    log.info("finished cell %s: mean accuracy %.3f", cell, mean)
    return {"cell": str(cell), "status": "done", "mean_accuracy": mean, "seconds": wall,
            "pretrain_seconds": phases.get("pretrain", 0.0)}


def _compute(spec: CellSpec, cell: Path, chash: str) -> pl.DataFrame:
    data = task_data(spec)
    if data.holdout and distributed.is_main():
        _record_holdout(data, spec, cell)
    checkpoint = base_model(spec, data)
    reused = _baseline_of_another_seed(cell, chash, checkpoint, spec.eval.calibration) if (
        spec.source == BASELINE and not spec.overwrite) else None   # overwrite: evaluate again
    wandb = spec.wandb if distributed.is_main() else None   # one W&B run per cell, from rank 0
    with wandb_run(wandb, sweep_dir=spec.sweep_dir, group=spec.sweep, job_type="cell", name=spec.name,
                   run_key=spec.name, config=lambda: _run_config(spec, chash),
                   tags=lambda: _run_tags(spec, data)) as run:
        run.define_metrics()
        if reused is not None:
            results, stats = reused, TrainStats(0, 0, 0.0)
        else:
            results, stats = _finetune_and_evaluate(spec, data, checkpoint, cell, run)
        scores, predictions = _frames(spec, data, checkpoint, results, stats, chash)
        if not distributed.is_main():
            return scores
        with timing.timed("io"):
            write_parquet(predictions, cell / PREDICTIONS)
            faults.point("between_records")
            write_parquet(scores, cell / SCORES)
        log_cell_results(run, scores, predictions, artifact_name(spec.sweep, spec.model.name, spec.source,
                                                                 spec.seed),
                         [cell / SCORES, cell / PREDICTIONS], {"config_hash": chash})
    return scores


def _run_config(spec: CellSpec, chash: str) -> dict:
    """The W&B config: the grouping keys at the top level, then every group of the spec."""
    groups = {k: v for k, v in spec.to_dict().items() if k not in ("model", "source_task")}
    return {"sweep": spec.sweep, "model": spec.model.name, "family": spec.model.family, "source_task": spec.source,
            "seed": spec.seed, "data_source": spec.data.source, "config_hash": chash,
            "model_config": dataclasses.asdict(spec.model), **{k: v for k, v in groups.items() if k != "sweep"}}


def _run_tags(spec: CellSpec, data: TaskData) -> list[str]:
    revisions = sorted({data.revision(t, "eval") for t in spec.target_tasks})
    digest = hashlib.sha256(" ".join(revisions).encode()).hexdigest()[:12]
    return [f"model:{spec.model.name}", f"source:{spec.source}", f"seed:{spec.seed}", f"data:{spec.data.source}",
            f"data_revision:{digest}"]


def task_data(spec: CellSpec) -> TaskData:
    """The questions of every task: the embedded suite (generated once) or a local BLINK snapshot."""
    if spec.data.source == "synthetic":
        from transfer.embedded.suite import suite_root

        return TaskData(spec.data, suite_root(spec.data, spec.cache_dir))
    return TaskData(spec.data, Path(spec.data.root))


def base_model(spec: CellSpec, data: TaskData) -> str:
    """The checkpoint every cell of the model starts from: model.checkpoint, or the embedded pretrained tiny model."""
    if spec.model.checkpoint:
        return spec.model.checkpoint
    from transfer.embedded.pretrain import pretrained_checkpoint

    return pretrained_checkpoint(spec, data, TASK_NAMES)


def _finetune_and_evaluate(spec: CellSpec, data: TaskData, checkpoint: str, cell: Path, run) -> tuple:
    """Load the base model, finetune it on the source task (none: as it is), score every target: (results, stats)."""
    model_spec = spec.model
    pixels = model_spec.pixels.processor_kwargs() if model_spec.pixels else None
    with timing.timed("model_load"):
        loaded = load_pretrained(model_spec.family, checkpoint, model_spec.dtype, pixels)
    faults.point("model_load")
    encoded = _encoded_cache(spec, checkpoint, loaded.processor, data.root)
    eval_sets = {t: encoded.get(f"{t}-eval-{spec.data.eval_limit}", lambda t=t: data.eval(t))
                 for t in spec.target_tasks}
    images = {t: ImageSource(loaded.processor, model_spec.family, lambda t=t: data.eval(t))
              for t in spec.target_tasks}
    model, stats = loaded.model, TrainStats(0, 0, 0.0)
    if spec.finetunes:
        model, stats = _finetuned(loaded, spec, data, encoded, cell, run)
    progress = Progress(len(eval_sets), f"eval {spec.name}", unit="task")
    results = evaluate_targets(for_scoring(model, spec.eval.merge_lora), eval_sets, model_spec.family,
                               loaded.tokenizer, spec.eval.batch_size, progress, spec.eval.calibration,
                               mode=spec.eval.mode, images=images, batch_tokens=spec.eval.batch_tokens,
                               max_new_tokens=spec.eval.max_new_tokens)
    progress.close()   # every process evaluated (ZeRO-3 forwards need all of them); rank 0 records
    return results, stats


def _encoded_cache(spec: CellSpec, checkpoint: str, processor, data_root: Path) -> EncodedCache:
    model = spec.model
    key = params_key({"checkpoint": checkpoint, "prefix": model.answer_prefix, "data": str(data_root),
                      "encoding": ENCODING, "pixels": model.pixels, "cached": model.cache_pixels})
    if key not in _ENCODED:
        _ENCODED.clear()
        _ENCODED[key] = EncodedCache(spec.cache_dir / "encoded" / key, processor, model.family, model.answer_prefix,
                                     model.cache_pixels)
    return _ENCODED[key]


def _finetuned(loaded, spec: CellSpec, data: TaskData, encoded: EncodedCache, cell: Path, run) -> tuple:
    """The model after LoRA on the source task or mixture (reusing a finished adapter), and its training stats."""
    adapter = cell / "adapter"
    if (adapter / "adapter_config.json").exists():
        log.info("reusing finished adapter %s", adapter)
        return PeftModel.from_pretrained(loaded.model, adapter), TrainStats(0, 0, 0.0)
    tasks = training_tasks(spec)
    pools = {t: encoded.get(f"{t}-train-{spec.data.train_limit}", lambda t=t: data.train(t), remember=False)
             for t in tasks}
    empty = [t for t in tasks if not pools[t]]
    if empty:
        raise ValueError(f"source_task={empty[0]} has no training questions in {data.train_root or data.root}; "
                         "expected a non-empty train split (or more val questions to split)")
    examples = mixture_examples(pools, spec.mixture, spec.seed) if spec.mixture else pools[spec.source]
    images = ImageSource(loaded.processor, spec.model.family, lambda: [q for t in tasks for q in data.train(t)])
    train = spec.train
    if spec.mixture and spec.mixture.steps_scale < 1:   # the budget curve: a share of the steps
        train = dataclasses.replace(train, steps=max(1, round(train.steps * spec.mixture.steps_scale)))
    model, stats = finetune(loaded.model, examples, family=spec.model.family, tokenizer=loaded.tokenizer,
                            train=train, out_dir=cell, seed=spec.seed, lora=spec.model.lora, desc=spec.name,
                            images=images, log_metrics=run.log)
    if distributed.is_main():   # every process trained (DeepSpeed); one saves
        with timing.timed("io"):
            tmp = cell / "adapter.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            model.save_pretrained(tmp)
            tmp.rename(adapter)
            shutil.rmtree(cell / "checkpoints", ignore_errors=True)
    distributed.barrier()
    return model, stats


def training_tasks(spec: CellSpec) -> list[str]:
    """The tasks a cell trains on: its source task, or its mixture's tasks (none for `none` and the base arm)."""
    if spec.mixture:
        return list(spec.mixture.tasks)
    return [spec.source] if spec.finetunes else []


def _frames(spec: CellSpec, data: TaskData, checkpoint: str, results: list[TaskResult], stats: TrainStats,
            chash: str):
    common = dict(sweep=spec.sweep, model=spec.model.name, source_task=spec.source, seed=spec.seed)
    commit, created = git_commit(), now_iso()
    trained_on = " ".join(data.revision(t, "train") for t in training_tasks(spec)) or None
    scores = [{**common, "checkpoint": checkpoint, "data_source": spec.data.source, "eval_mode": r.mode,
               "calibration": spec.eval.calibration, "target_task": r.task, "n": len(r.gold),
               "correct": sum(r.correct), "accuracy": sum(r.correct) / len(r.gold), "chance": get_task(r.task).chance,
               "correct_raw": sum(r.correct_raw), "accuracy_raw": sum(r.correct_raw) / len(r.gold),
               "unparsed": r.unparsed, "unparsed_share": r.unparsed_share,
               "data_revision": data.revision(r.task, "eval"),
               "train_data_revision": trained_on, "train_examples": stats.examples, "train_steps": stats.steps,
               "train_seconds": stats.seconds, "eval_seconds": r.seconds, "config_hash": chash,
               "git_commit": commit, "created_at": created}
              for r in results]
    predictions = pl.DataFrame([
        {**common, "idx": idx, "target_task": r.task, "gold": g, "predicted": p, "correct": c, "predicted_raw": pr,
         "loglik": ll, "text": text}
        for r in results
        for idx, g, p, c, pr, ll, text in zip(r.idx, r.gold, r.predicted, r.correct, r.predicted_raw,
                                              r.loglik or [None] * len(r.idx), r.texts or [None] * len(r.idx))
    ], schema=PREDICTION_SCHEMA)
    return pl.DataFrame(scores, schema=SCORE_SCHEMA), predictions


def _record_holdout(data: TaskData, spec: CellSpec, cell: Path) -> None:
    """BLINK without data.train_root: val is split by idx hash; warn, and record which questions are which."""
    fraction = spec.data.holdout_train_fraction
    write_json({"holdout": True, "train_fraction": fraction, "root": str(data.root),
                "method": "per task, stratified by answer: sha256(task/idx) order, round(fraction*n) train in all",
                "train_idx": {t: [q.idx for q in data.train(t)] for t in training_tasks(spec)},
                "eval_idx": {t: [q.idx for q in data.eval(t)] for t in spec.target_tasks}}, cell / SPLIT)
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
        results = []
        for task in scores["target_task"]:
            rows = predictions.filter(pl.col("target_task") == task)
            generated = "text" in rows.columns and rows["text"].null_count() == 0 and rows.height > 0
            results.append(TaskResult(task, rows["idx"].to_list(), rows["gold"].to_list(),
                                      None if generated else rows["loglik"].to_list(), 0.0, calibration,
                                      rows["text"].to_list() if generated else None,
                                      rows["predicted"].to_list() if generated else None))
        return results
    return None
