"""Zero-shot multiple-choice scoring by the log-likelihood of each option's answer continuation.

No generation, no answer parsing. When the options' continuations share a head and differ in one final
token (the usual case: the answer letter), one forward pass per question gives every option's
log-likelihood (the shared head adds the same term to every option, so it is left out), and the LM head runs at
that one position only (`logits_to_keep`: the same logits, less forward time). Otherwise each
(question, option) pair gets its own sequence and the continuation's token log-probabilities are summed.

Calibration removes the answer-letter prior before the argmax: `batch` subtracts, per option position, the mean
log-likelihood over the target's questions (batch calibration, Zhou et al. 2024), so a model that has learned to
favour a letter (e.g. after finetuning on a 2-option task) is scored on what it sees rather than on that habit.
The stored log-likelihoods stay raw.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property

import torch
import torch.nn.functional as F
from peft import PeftModel

from transfer import timing
from transfer.batch import option_batch, scoring_batch
from transfer.progress import Progress

CALIBRATIONS = ("none", "batch")


def calibrate(loglik: list[list[float]], method: str) -> list[list[float]]:
    """Option scores after removing the letter prior (`none`: the raw log-likelihoods)."""
    if method not in CALIBRATIONS:
        raise ValueError(f"unknown eval.calibration {method!r}; expected one of: {', '.join(CALIBRATIONS)}")
    if method == "none" or not loglik:
        return loglik
    width = len(loglik[0])
    if any(len(ll) != width for ll in loglik):
        raise ValueError("batch calibration needs the same number of options for every question of a target")
    prior = [sum(ll[j] for ll in loglik) / len(loglik) for j in range(width)]
    return [[v - p for v, p in zip(ll, prior)] for ll in loglik]


def predict(loglik: list[list[float]], method: str) -> list[int]:
    """The chosen option of every question: the argmax of its calibrated scores."""
    return [max(range(len(s)), key=s.__getitem__) for s in calibrate(loglik, method)]


def for_scoring(model: torch.nn.Module, merge_lora: bool) -> torch.nn.Module:
    """The model to score: a LoRA model folded into its weights when `merge_lora` (the same function without the
    adapter's extra matmuls, equal up to float rounding; see docs/design.md). Only float32
    weights that this process holds whole are merged: merging into bf16/fp16 weights rounds the update away, and
    ZeRO-3 shards (`ds_id`) cannot be merged; those are scored unmerged."""
    if not merge_lora or not isinstance(model, PeftModel):
        return model
    if any(p.dtype != torch.float32 or hasattr(p, "ds_id") for p in model.parameters()):
        return model
    return model.merge_and_unload()


@dataclass
class TaskResult:
    task: str
    idx: list[str]
    gold: list[int]
    loglik: list[list[float]]   # per question, per option (raw)
    seconds: float
    calibration: str = field(default="none")

    @cached_property
    def predicted(self) -> list[int]:
        return predict(self.loglik, self.calibration)

    @cached_property
    def correct(self) -> list[bool]:
        return [p == g for p, g in zip(self.predicted, self.gold)]


def split_head(options: list[list[int]]) -> tuple[list[int], list[int]] | None:
    """(shared head, final token per option) when the options differ only in their last token, else None."""
    head = options[0][:-1]
    if all(len(o) == len(options[0]) and o[:-1] == head for o in options):
        lasts = [o[-1] for o in options]
        if len(set(lasts)) == len(lasts):
            return head, lasts
    return None


def _last_positions(mask: torch.Tensor) -> torch.Tensor:
    return mask.sum(1) - 1


@torch.inference_mode()
def _score_single_pass(model, examples, family, pad_id, splits) -> list[list[float]]:
    with timing.timed("preprocessing"):
        batch = scoring_batch(examples, family, pad_id, [s[0] for s in splits])
    last = _last_positions(batch["attention_mask"])
    with timing.timed("model_compute"):   # the LM head only at each row's last position
        logits = model(**batch, logits_to_keep=last[:, None]).logits[:, 0]
    logp = F.log_softmax(logits.float(), -1)
    return [logp[i, s[1]].tolist() for i, s in enumerate(splits)]


@torch.inference_mode()
def _score_full(model, examples, family, pad_id) -> list[list[float]]:
    with timing.timed("preprocessing"):
        batch, owners = option_batch(examples, family, pad_id)
    with timing.timed("model_compute"):
        logits = model(**batch).logits
    logp = F.log_softmax(logits.float(), -1)
    ends = _last_positions(batch["attention_mask"])
    out = [[0.0] * len(ex["options"]) for ex in examples]
    for row, (qi, oi, n) in enumerate(owners):
        end = int(ends[row])
        targets = batch["input_ids"][row, end - n + 1: end + 1]
        out[qi][oi] = float(logp[row, end - n: end].gather(-1, targets[:, None]).sum())
    return out


def score_examples(model, examples: list[dict], family: str, pad_id: int, batch_size: int) -> list[list[float]]:
    """Option log-likelihoods for every encoded example, batched."""
    model.eval()
    out: list[list[float]] = []
    for start in range(0, len(examples), batch_size):
        chunk = examples[start: start + batch_size]
        splits = [split_head(ex["options"]) for ex in chunk]
        if all(splits):
            out += _score_single_pass(model, chunk, family, pad_id, splits)
        else:
            out += _score_full(model, chunk, family, pad_id)
    return out


def evaluate_targets(model, encoded: dict[str, list[dict]], family: str, pad_id: int, batch_size: int,
                     progress: Progress | None = None, calibration: str = "none") -> list[TaskResult]:
    """Score every target task's encoded eval split."""
    calibrate([], calibration)   # an unknown method fails before any forward pass
    results = []
    for task, examples in encoded.items():
        start = time.perf_counter()
        loglik = score_examples(model, examples, family, pad_id, batch_size)
        results.append(TaskResult(task, [e["idx"] for e in examples], [e["answer"] for e in examples], loglik,
                                  time.perf_counter() - start, calibration))
        if progress:
            progress.update(1)
    return results
