"""Finetuning with the HF Trainer and DeepSpeed ZeRO: LoRA on the language model, or full (pretraining).

DeepSpeed needs a process group: transfer.distributed exports its rendezvous (torchrun, SLURM tasks or one process).
A run resumes from its latest complete Trainer checkpoint in `out_dir/checkpoints` (preemption).
"""
from __future__ import annotations

import json
import logging
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from torch.utils.data import Dataset
from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments, set_seed

from transfer import faults, timing
from transfer.batch import training_batch
from transfer.distributed import setup_env, world_size
from transfer.progress import Progress
from transfer.spec import LoraSpec, TrainSpec

log = logging.getLogger("transfer")


def last_complete_checkpoint(folder: Path) -> str | None:
    """The highest-step `checkpoint-N` in `folder` that the Trainer finished writing (its trainer_state.json,
    written after the weights and optimizer, exists): a preemption can land while the next one is half written."""
    done = [p for p in folder.glob("checkpoint-*")
            if p.name.rsplit("-", 1)[1].isdigit() and (p / "trainer_state.json").is_file()]
    return str(max(done, key=lambda p: int(p.name.rsplit("-", 1)[1]))) if done else None


@dataclass
class TrainStats:
    examples: int
    steps: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    resumed_from_step: int = 0


class _Examples(Dataset):
    def __init__(self, examples: list[dict]):
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict:
        return self.examples[i]


class _Monitor(TrainerCallback):
    """Progress, losses, the time spent inside optimizer steps (forward, backward, update) and the live metrics
    handed to `sink` at every Trainer log (loss, learning rate, gradient norm, seconds per step)."""

    def __init__(self, progress: Progress, started: float, sink: Callable[[dict], None] | None = None):
        self.progress, self.started, self.sink = progress, started, sink
        self.losses: list[float] = []
        self._t, self._step_seconds = 0.0, []

    def on_train_begin(self, args, state, control, **kw):
        timing.add("trainer_setup", time.perf_counter() - self.started)

    def on_step_begin(self, args, state, control, **kw):
        self._t = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        seconds = time.perf_counter() - self._t
        timing.add("model_compute", seconds)
        self._step_seconds.append(seconds)
        self.progress.update(1)
        if state.global_step >= max(1, args.max_steps // 2):
            faults.point("mid_training")

    def on_log(self, args, state, control, logs=None, **kw):
        if not logs or "loss" not in logs:
            return
        self.losses.append(float(logs["loss"]))
        if self.sink:
            steps, self._step_seconds = self._step_seconds, []
            self.sink({"train/global_step": state.global_step, "train/loss": float(logs["loss"]),
                       "train/learning_rate": logs.get("learning_rate"), "train/grad_norm": logs.get("grad_norm"),
                       "train/step_time": sum(steps) / len(steps) if steps else None})


def deepspeed_config(path: Path, stage: int) -> dict:
    """The ZeRO JSON at `path` with its stage set to `stage`."""
    config = json.loads(path.read_text())
    config.setdefault("zero_optimization", {})["stage"] = stage
    return config


def apply_lora(model: torch.nn.Module, lora: LoraSpec) -> torch.nn.Module:
    """Wrap the model with LoRA on the modules matching `lora.target` (the language model only)."""
    matched = [n for n, _ in model.named_modules() if re.fullmatch(lora.target, n)]
    if not matched:
        raise ValueError(f"model.lora.target={lora.target!r} matches no module of {type(model).__name__}")
    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=lora.target,
                        modules_to_save=list(lora.trainable_modules) or None)
    with warnings.catch_warnings():   # peft reads transformers' deprecated `is_gradient_checkpointing` alias
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        return get_peft_model(model, config)


def finetune(model: torch.nn.Module, examples: list[dict], *, family: str, tokenizer, train: TrainSpec, out_dir: Path,
             seed: int, lora: LoraSpec | None, desc: str, images=None,
             log_metrics: Callable[[dict], None] | None = None) -> tuple[torch.nn.Module, TrainStats]:
    """Train on `examples` (encoded) for `train.steps` optimizer steps; returns the trained model. `images`
    (transfer.encode.ImageSource) makes the pixels of each batch when the examples do not carry them;
    `log_metrics` receives the live training metrics (e.g. a W&B run's log)."""
    if lora is not None:
        set_seed(seed)   # the LoRA init draws from the global RNG: same seed, same cell, in any process
        model = apply_lora(model, lora)
    ds = train.deepspeed
    if ds:
        setup_env(ds.master_port)
    train = train.for_world(world_size())
    args = TrainingArguments(
        output_dir=str(out_dir / "checkpoints"), max_steps=train.steps,
        per_device_train_batch_size=train.batch_size, gradient_accumulation_steps=train.grad_accum,
        learning_rate=train.lr, weight_decay=train.weight_decay, lr_scheduler_type=train.schedule,
        warmup_steps=train.warmup_steps, max_grad_norm=train.max_grad_norm, seed=seed, data_seed=seed,
        logging_steps=max(1, train.steps // 10), save_strategy="steps" if train.save_steps else "no",
        save_steps=train.save_steps or 500, save_total_limit=1, report_to="none", use_cpu=not torch.cuda.is_available(),
        bf16=train.bf16, activation_checkpointing=train.activation_checkpointing,
        dataloader_num_workers=0, remove_unused_columns=False, disable_tqdm=True,
        deepspeed=deepspeed_config(ds.path, ds.stage) if ds else None,
    )
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    progress = Progress(train.steps, desc, unit="step")
    started = time.perf_counter()
    monitor = _Monitor(progress, started, log_metrics)
    trainer = Trainer(model=model, args=args, train_dataset=_Examples(examples), callbacks=[monitor],
                      data_collator=lambda b: training_batch(b, family, pad, eos, images(b) if images else None))
    trainer.remove_callback(PrinterCallback)
    resume = last_complete_checkpoint(Path(args.output_dir))
    resumed = int(resume.rsplit("-", 1)[1]) if resume else 0
    if resume:
        log.info("resuming training from %s (step %d of %d)", resume, resumed, train.steps)
        progress.update(resumed)
    trainer.train(resume_from_checkpoint=resume)
    progress.close()
    stats = TrainStats(len(examples), train.steps, time.perf_counter() - started, monitor.losses, resumed)
    return trainer.model, stats
