"""bench/gpu.py on CPU: the clear exit without CUDA, the 7B-class geometry of each family, and how FLOPs are
counted (a LoRA step computes no weight gradients for frozen weights)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers import load_bench

ROOT = Path(__file__).resolve().parents[1]
gpu = load_bench("gpu")

LANGUAGE_MODEL = ("language_model", "text_model")


def test_without_cuda_it_exits_with_a_clear_message() -> None:
    run = subprocess.run([sys.executable, "bench/gpu.py"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={"CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"})
    assert run.returncode == 1
    assert "bench/gpu.py needs a CUDA GPU" in run.stderr and run.stderr.strip().count("\n") == 0, run.stderr


@pytest.mark.parametrize("family, billions", [("qwen", 8.3), ("llava", 7.1), ("idefics", 8.5)])
def test_the_real_geometry_is_7b_class(family: str, billions: float) -> None:
    model, _ = gpu.build(family, "real", "meta", torch.bfloat16)   # meta: shapes only, no memory
    assert sum(p.numel() for p in model.parameters()) / 1e9 == pytest.approx(billions, abs=0.1)


def _frozen_language_linears(model) -> list[torch.nn.Linear]:
    return [m for name, m in model.named_modules() if isinstance(m, torch.nn.Linear) and name.endswith("base_layer")
            and any(part in name for part in LANGUAGE_MODEL)]


@pytest.mark.parametrize("family", gpu.FAMILIES)
def test_a_lora_step_counts_no_weight_gradients_of_frozen_weights(family: str) -> None:
    model, processor = gpu.build(family, "tiny", "cpu", torch.float32)
    batch = gpu.batch_for(family, processor, 2, gpu.geometry(family, "tiny")["image_size"], "cpu", torch.float32)
    forward = gpu.count_flops(gpu.eval_step_fn(model, batch))
    lora = gpu.count_flops(gpu.train_step_fn(model, batch))
    linears = _frozen_language_linears(model)
    assert linears and all(not m.weight.requires_grad for m in linears)
    for m in linears:                       # the same step with the language model's base weights trainable
        m.weight.requires_grad_(True)
    full = gpu.count_flops(gpu.train_step_fn(model, batch))
    tokens = batch["input_ids"].numel()
    weight_grads = sum(2 * tokens * m.in_features * m.out_features for m in linears)
    assert full - lora == weight_grads
    assert forward < lora < 2.5 * forward   # forward + input gradients, no frozen weight gradients


def test_peak_flops_by_device_name() -> None:
    assert gpu.peak_tflops("NVIDIA H100 80GB HBM3", None) == 989.4
    assert gpu.peak_tflops("NVIDIA H100 PCIe", None) == 756.0
    assert gpu.peak_tflops("NVIDIA H200", None) == 989.4
    assert gpu.peak_tflops("Some GPU", None) is None and gpu.peak_tflops("Some GPU", 500.0) == 500.0
