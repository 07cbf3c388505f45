"""What a cell costs, estimated from stored figures: device-hours and memory per cell.

A cell trains `train.steps x train.batch_size x train.grad_accum` questions per device and evaluates every target's
questions on every device (evaluation is not sharded), so with a profile's tokens per question:

    hours = (train tokens per device / train rate + eval tokens / eval rate + overhead) / 3600
    device-hours = hours x devices

The rates come from, in this order: the sweep's own finished cells of the model (their train and eval seconds);
on a GPU `bench/gpu.py`'s JSON (`TRANSFER_GPU_FIGURES`, default bench/gpu.json: tokens/s of the family's
7B-class model, scaled by the parameter count read from the checkpoint name); else documented defaults: for GPUs
a FLOP count at an assumed MFU, for the embedded default the single-thread CPU figures in docs/cluster.md.
GPU memory is the weights (split over the GPUs under ZeRO-3) plus activations per training token.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from transfer.data.mixture import mixture_examples
from transfer.plan.questions import Profile
from transfer.records import SCORES, finished_hash
from transfer.spec import CellSpec

ROOT = Path(__file__).resolve().parents[2]
GPU_FIGURES = ROOT / "bench" / "gpu.json"
REFERENCE_B = {"qwen": 7.0, "llava": 7.0, "idefics": 8.0}   # parameters (billions) of bench/gpu.py's models
ASSUMED_GPU, ASSUMED_PEAK_TFLOPS, ASSUMED_MFU = "A100", 312.0, 0.3
FLOPS_PER_PARAM = {"train": 4.0, "eval": 2.0}   # per token: LoRA's forward + input gradients; a forward
ACTIVATION_MIB = {True: 0.1, False: 0.7}        # per training token and billion parameters (with/without recompute)
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
CUDA_OVERHEAD = 1.1                              # context, allocator fragmentation
# Assumed figures for the embedded default on one CPU thread, printed with the plan (how they were measured:
# docs/cluster.md): tokens/s of the tiny models, seconds per cell besides training and evaluation, seconds per
# pretraining step, resident memory per cell.
CPU_TRAIN_TOKENS_S, CPU_EVAL_TOKENS_S, CPU_OVERHEAD_S, CPU_PRETRAIN_STEP_S, CPU_MEM_GB = 20000.0, 75000.0, 1.2, 0.2, 2.0


@dataclass(frozen=True)
class Rates:
    train_tokens_s: float       # training tokens per second per device
    eval_tokens_s: float        # evaluation tokens per second per device
    overhead_s: float           # per cell besides training and evaluation (the fastest finished cell's)
    activation_mib: float       # GPU memory per training token of a micro-batch (0 on CPUs)
    source: str                 # where the figures come from


@dataclass(frozen=True)
class Estimate:
    hours: float                # wall time of one cell
    device_hours: float         # hours x devices (GPUs; one CPU thread for CPU cells)
    mem_gb: float               # GPU memory per GPU, or host memory of a CPU cell


def on_gpu(spec: CellSpec) -> bool:
    """A real checkpoint is costed on GPUs; the embedded default on a CPU."""
    return spec.model.checkpoint is not None


def devices(spec: CellSpec) -> int:
    """GPUs of a GPU cell (model.resources, default 1), 1 for a CPU cell."""
    resources = spec.model.resources
    return max(1, resources.gpus) if on_gpu(spec) and resources else 1


def size_b(spec: CellSpec) -> float | None:
    """Parameters in billions, read from the checkpoint name (…-7B-…, …32b…); None when it does not say."""
    match = re.search(r"(?<![\d.])(\d+(?:\.\d+)?)[bB](?![a-zA-Z])", spec.model.checkpoint or "")
    return float(match.group(1)) if match else None


def zero_stage(spec: CellSpec) -> int:
    if spec.model.zero_stage is not None:
        return spec.model.zero_stage
    return spec.train.deepspeed.stage if spec.train.deepspeed else 0


def rates(spec: CellSpec, profile: Profile) -> Rates:
    """The figures the model's cells are costed with (see the module docstring for the order)."""
    measured = _measured(spec, profile)
    if measured:
        return measured
    if not on_gpu(spec):
        return Rates(CPU_TRAIN_TOKENS_S, CPU_EVAL_TOKENS_S, CPU_OVERHEAD_S, 0.0,
                     f"assumed single-thread CPU figures of the embedded default ({CPU_TRAIN_TOKENS_S:.0f} train "
                     f"and {CPU_EVAL_TOKENS_S:.0f} eval tokens/s, {CPU_OVERHEAD_S:g} s a cell besides them, "
                     f"{CPU_PRETRAIN_STEP_S:g} s a pretraining step, {CPU_MEM_GB:g} GB; docs/cluster.md)")
    return _bench(spec) or _flops(spec)


def training(spec: CellSpec, profile: Profile) -> tuple[int, float]:
    """(training questions, mean prompt tokens per training question) of a cell: its source task's, none for `none`
    and a mixture's base arm; a mixture's share of each task as the cell draws it (transfer.data.mixture),
    its tokens weighted by those shares."""
    mixture = spec.mixture
    if not spec.finetunes:
        return 0, 0.0
    if mixture is None:
        task = profile.tasks[spec.source]
        return task.train_questions, task.train_tokens
    drawn = mixture_examples({t: [t] * profile.tasks[t].train_questions for t in mixture.tasks}, mixture, seed=0)
    return len(drawn), sum(profile.tasks[t].train_tokens for t in drawn) / len(drawn)


def train_steps(spec: CellSpec) -> int:
    """The optimizer steps of a cell: train.steps, or a mixture's share of them (the budget curve)."""
    steps, mixture = spec.train.steps, spec.mixture
    return max(1, round(steps * mixture.steps_scale)) if mixture and mixture.steps_scale < 1 else steps


def estimate(spec: CellSpec, profile: Profile, rate: Rates) -> Estimate:
    """One cell's hours, device-hours and memory."""
    n = devices(spec)
    train = spec.train.for_world(n)
    _, tokens = training(spec, profile)
    train_questions = train_steps(spec) * train.batch_size * train.grad_accum if spec.finetunes else 0
    train_tokens = train_questions * tokens
    eval_tokens = sum(profile.tasks[t].eval_questions * profile.tasks[t].eval_tokens for t in spec.target_tasks)
    seconds = train_tokens / rate.train_tokens_s + eval_tokens / rate.eval_tokens_s + rate.overhead_s
    return Estimate(seconds / 3600, n * seconds / 3600, _memory(spec, profile, rate))


def pretrain_hours(spec: CellSpec) -> float:
    """The pretraining of a model's embedded base model (once per model, before its first cell), on one CPU
    thread."""
    return spec.pretrain.steps * CPU_PRETRAIN_STEP_S / 3600


def _memory(spec: CellSpec, profile: Profile, rate: Rates) -> float:
    if not on_gpu(spec):
        return CPU_MEM_GB
    size = size_b(spec) or REFERENCE_B[spec.model.family]
    weights = DTYPE_BYTES[spec.model.dtype] * size / (devices(spec) if zero_stage(spec) == 3 else 1)
    longest = max(p.train_tokens for p in profile.tasks.values())
    activations = spec.train.batch_size * longest * rate.activation_mib * size / 1024
    return CUDA_OVERHEAD * (weights + activations)


def _flops(spec: CellSpec) -> Rates:
    size = size_b(spec) or REFERENCE_B[spec.model.family]
    per_s = ASSUMED_MFU * ASSUMED_PEAK_TFLOPS * 1e12
    return Rates(per_s / (FLOPS_PER_PARAM["train"] * size * 1e9), per_s / (FLOPS_PER_PARAM["eval"] * size * 1e9), 0.0,
                 ACTIVATION_MIB[spec.train.activation_checkpointing],
                 f"no GPU figures ({_figures_path()}): {FLOPS_PER_PARAM['train']:g}·N training and "
                 f"{FLOPS_PER_PARAM['eval']:g}·N evaluation FLOPs per token at {ASSUMED_MFU:.0%} MFU of an "
                 f"{ASSUMED_GPU}'s {ASSUMED_PEAK_TFLOPS:g} TFLOP/s (assumed)")


def _figures_path() -> Path:
    return Path(os.environ.get("TRANSFER_GPU_FIGURES", GPU_FIGURES))


def _bench(spec: CellSpec) -> Rates | None:
    """Rates from bench/gpu.py's JSON rows of the family, scaled from its 7B-class model to this size."""
    path = _figures_path()
    if not path.is_file():
        return None
    family = spec.model.family
    rows = [r for r in json.loads(path.read_text()) if r.get("family") == family]
    train = sorted((r for r in rows if r["step"] == "train"), key=lambda r: r["mode"] != "zero2")
    evaluation = [r for r in rows if r["step"] == "eval"]
    if not train or not evaluation:
        return None
    reference, size = REFERENCE_B[family], size_b(spec) or REFERENCE_B[family]
    weights_mib = 2 * reference * 1e9 / 2**20
    per_token = max(0.0, (train[0]["peak_mem_gib"] * 1024 - weights_mib) / (train[0]["batch"] * train[0]["seq_len"]))
    return Rates(train[0]["tokens_per_s"] * reference / size, evaluation[0]["tokens_per_s"] * reference / size, 0.0,
                 per_token / reference, f"{path.name} ({train[0]['mode']} training, {family} {reference:g}B-class, "
                 f"scaled by parameters)")


def _measured(spec: CellSpec, profile: Profile) -> Rates | None:
    """Rates from this sweep's finished cells of the model with the same config_hash."""
    folder = spec.sweep_dir / "cells" / spec.model.name
    chash, cells = spec.config_hash(), []
    for scores_file in sorted(folder.glob(f"*/seed=*/{SCORES}")):
        cell = scores_file.parent
        if finished_hash(cell) != chash or not (cell / "timings.json").is_file():
            continue
        cells.append((pl.read_parquet(scores_file), json.loads((cell / "timings.json").read_text())))
    per_step = spec.train.for_world(devices(spec))
    train = [(s["train_steps"][0] * per_step.batch_size * per_step.grad_accum
              * profile.tasks[s["source_task"][0]].train_tokens, s["train_seconds"][0])
             for s, _ in cells if s["train_steps"][0] and s["source_task"][0] in profile.tasks]   # not mixtures
    evaluation = [(sum(n * profile.tasks[t].eval_tokens for t, n in zip(s["target_task"], s["n"])),
                   s["eval_seconds"].sum()) for s, _ in cells if s["eval_seconds"].sum() > 0]
    if not train or not evaluation:
        return None
    overhead = min(t["wall"] - s["train_seconds"][0] - s["eval_seconds"].sum() - t.get("pretrain", 0.0)
                   for s, t in cells)   # the steady cell: the first one also built data and encodings
    return Rates(sum(k for k, _ in train) / sum(s for _, s in train),
                 sum(k for k, _ in evaluation) / sum(s for _, s in evaluation), max(0.0, overhead),
                 _bench_or_flops_activation(spec),
                 f"{len(cells)} finished cells of this sweep (their train and eval seconds)")


def _bench_or_flops_activation(spec: CellSpec) -> float:
    if not on_gpu(spec):
        return 0.0
    return (_bench(spec) or _flops(spec)).activation_mib
