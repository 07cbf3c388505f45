"""Zero-shot multiple-choice scoring: by the log-likelihood of each option's answer continuation (`loglik`, the
default: no generation, no answer parsing), or by greedy generation and a choice-restricted answer extraction
(`generate`, transfer.answers: the way published BLINK numbers are made).

When the options' continuations share a head and differ in one final
token (the usual case: the answer letter), one forward pass per question gives every option's
log-likelihood (the shared head adds the same term to every option, so it is left out), and the LM head runs at
that one position only (`logits_to_keep`: the same logits, less forward time). Otherwise each
(question, option) pair gets its own sequence and the continuation's token log-probabilities are summed.

Calibration removes the answer-letter prior before the argmax: `batch` subtracts, per option position, the mean
log-likelihood over the target's questions (batch calibration, Zhou et al. 2024), so a model that has learned to
favour a letter (e.g. after finetuning on a 2-option task) is scored on what it sees rather than on that habit.
The stored log-likelihoods stay raw, and the raw accuracy is recorded next to the calibrated one.

Batches hold `eval.batch_size` questions, or, with `eval.batch_tokens`, as many questions of similar length as fit
that many padded tokens (at most `eval.batch_size`): real images make prompts of very different lengths.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property

import torch
import torch.nn.functional as F
from peft import PeftModel

from transfer import faults, timing
from transfer.answers import extract_choice
from transfer.batch import last_positions, option_batch, prompt_batch, scoring_batch
from transfer.progress import Progress

CALIBRATIONS = ("none", "batch")
UNPARSED = -1   # the predicted index of a generated answer that declares no option


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
    loglik: list[list[float]] | None   # per question, per option (raw); None in generation mode
    seconds: float
    calibration: str = field(default="none")
    texts: list[str] | None = None      # the generated answers (generation mode)
    picks: list[int] | None = None      # the choices they declare, UNPARSED where none (generation mode)

    @property
    def mode(self) -> str:
        return "loglik" if self.loglik is not None else "generate"

    @cached_property
    def predicted(self) -> list[int]:
        """The chosen option per question (generation: UNPARSED when the answer declares none)."""
        return predict(self.loglik, self.calibration) if self.loglik is not None else list(self.picks)

    @cached_property
    def predicted_raw(self) -> list[int]:
        """The choice without letter-prior calibration (generation: the same as `predicted`)."""
        return predict(self.loglik, "none") if self.loglik is not None else self.predicted

    @cached_property
    def correct(self) -> list[bool]:
        return [p == g for p, g in zip(self.predicted, self.gold)]

    @cached_property
    def correct_raw(self) -> list[bool]:
        return [p == g for p, g in zip(self.predicted_raw, self.gold)]

    @property
    def unparsed(self) -> int:
        return sum(p == UNPARSED for p in self.predicted)

    @property
    def unparsed_share(self) -> float:
        """The share of the target's questions whose generated answer declares no option (0 for loglik)."""
        return self.unparsed / len(self.gold)


def split_head(options: list[list[int]]) -> tuple[list[int], list[int]] | None:
    """(shared head, final token per option) when the options differ only in their last token, else None."""
    head = options[0][:-1]
    if all(len(o) == len(options[0]) and o[:-1] == head for o in options):
        lasts = [o[-1] for o in options]
        if len(set(lasts)) == len(lasts):
            return head, lasts
    return None


@torch.inference_mode()
def _score_single_pass(model, examples, family, pad_id, splits, images=None) -> list[list[float]]:
    with timing.timed("preprocessing"):
        batch = scoring_batch(examples, family, pad_id, [s[0] for s in splits], images)
    last = last_positions(batch["attention_mask"])
    with timing.timed("model_compute"):   # the LM head only at each row's last position
        logits = model(**batch, logits_to_keep=last[:, None]).logits[:, 0]
    logp = F.log_softmax(logits.float(), -1)
    return [logp[i, s[1]].tolist() for i, s in enumerate(splits)]


@torch.inference_mode()
def _score_full(model, examples, family, pad_id, images=None) -> list[list[float]]:
    with timing.timed("preprocessing"):
        batch, owners = option_batch(examples, family, pad_id, images)
    with timing.timed("model_compute"):
        logits = model(**batch).logits
    logp = F.log_softmax(logits.float(), -1)
    ends = last_positions(batch["attention_mask"])
    out = [[0.0] * len(ex["options"]) for ex in examples]
    for row, (qi, oi, n) in enumerate(owners):
        end = int(ends[row])
        targets = batch["input_ids"][row, end - n + 1: end + 1]
        out[qi][oi] = float(logp[row, end - n: end].gather(-1, targets[:, None]).sum())
    return out


def _cost(example: dict) -> tuple[int, int]:
    """(rows, tokens per row) that scoring `example` takes."""
    longest = len(example["prompt_ids"]) + max(len(o) for o in example["options"])
    return (1 if split_head(example["options"]) else len(example["options"])), longest


def batches(examples: list[dict], batch_size: int, batch_tokens: int | None = None) -> list[list[int]]:
    """Index lists of the batches: consecutive runs of `batch_size`, or, with a token budget, questions sorted by
    length and packed while rows x the longest row stays within `batch_tokens` (one question at least)."""
    if batch_tokens is None:
        return [list(range(start, min(start + batch_size, len(examples))))
                for start in range(0, len(examples), batch_size)]
    order = sorted(range(len(examples)), key=lambda i: _cost(examples[i])[1])
    out, current, rows, longest = [], [], 0, 0
    for i in order:
        r, n = _cost(examples[i])
        if current and (len(current) == batch_size or (rows + r) * max(longest, n) > batch_tokens):
            out.append(current)
            current, rows, longest = [], 0, 0
        current.append(i)
        rows, longest = rows + r, max(longest, n)
    return out + ([current] if current else [])


def score_examples(model, examples: list[dict], family: str, pad_id: int, batch_size: int, images=None,
                   batch_tokens: int | None = None) -> list[list[float]]:
    """Option log-likelihoods for every encoded example, batched; `images` makes pixels per batch if needed."""
    model.eval()
    out: list[list[float] | None] = [None] * len(examples)
    for indices in batches(examples, batch_size, batch_tokens):
        chunk = [examples[i] for i in indices]
        pixels = images(chunk) if images else None
        splits = [split_head(ex["options"]) for ex in chunk]
        if all(splits):
            scores = _score_single_pass(model, chunk, family, pad_id, splits, pixels)
        else:
            scores = _score_full(model, chunk, family, pad_id, pixels)
        for i, score in zip(indices, scores):
            out[i] = score
    return out


@torch.inference_mode()
def generate_answers(model, examples: list[dict], family: str, tokenizer, batch_size: int, max_new_tokens: int,
                     images=None, batch_tokens: int | None = None) -> list[str]:
    """Greedy answers to every encoded example's prompt (left-padded batches), decoded without special tokens."""
    model.eval()
    out: list[str | None] = [None] * len(examples)
    for indices in batches(examples, batch_size, batch_tokens):
        chunk = [examples[i] for i in indices]
        with timing.timed("preprocessing"):
            batch = prompt_batch(chunk, family, tokenizer.pad_token_id, images(chunk) if images else None)
        with timing.timed("model_compute"):
            tokens = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                    pad_token_id=tokenizer.pad_token_id)
        texts = tokenizer.batch_decode(tokens[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
        for i, text in zip(indices, texts):
            out[i] = text.strip()
    return out


def evaluate_targets(model, encoded: dict[str, list[dict]], family: str, tokenizer, batch_size: int,
                     progress: Progress | None = None, calibration: str = "none", *, mode: str = "loglik",
                     images: dict | None = None, batch_tokens: int | None = None,
                     max_new_tokens: int = 16) -> list[TaskResult]:
    """Score every target task's encoded eval split (`images`: per task, an ImageSource when pixels are not
    stored with the examples)."""
    calibrate([], calibration)   # an unknown method fails before any forward pass
    results = []
    for task, examples in encoded.items():
        start = time.perf_counter()
        source = (images or {}).get(task)
        ids, gold = [e["idx"] for e in examples], [e["answer"] for e in examples]
        if mode == "generate":
            texts = generate_answers(model, examples, family, tokenizer, batch_size, max_new_tokens, source,
                                     batch_tokens)
            picks = [UNPARSED if (c := extract_choice(t, e["choices"])) is None else c for t, e in zip(texts, examples)]
            result = TaskResult(task, ids, gold, None, time.perf_counter() - start, calibration, texts, picks)
        else:
            loglik = score_examples(model, examples, family, tokenizer.pad_token_id, batch_size, source, batch_tokens)
            result = TaskResult(task, ids, gold, loglik, time.perf_counter() - start, calibration)
        results.append(result)
        faults.point("mid_eval")
        if progress:
            progress.update(1)
    return results
