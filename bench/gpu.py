"""GPU benchmark: a LoRA training step and batched evaluation of a 7B-class model of each family.

The models are built with random weights from each family's real configuration (Qwen2.5-VL-7B-Instruct,
llava-1.5-7b-hf, Idefics3-8B-Llama3: widths, depths, heads, vocabulary, vision towers, image geometry), so
nothing is downloaded. Batches go through the project's own path: the family's processor (real image geometry,
a locally trained tokenizer), `encode_questions`, `training_batch`, LoRA from conf/model/<family>.yaml.

    python bench/gpu.py                                   # 1 GPU: plain PyTorch (AdamW) and DeepSpeed ZeRO-2
    torchrun --nproc-per-node 8 bench/gpu.py --modes zero2    # ZeRO-2 across 8 GPUs
    python bench/gpu.py --families qwen --train-batch 16 --gradient-checkpointing --out bench/gpu.json

Reported per family and mode: tokens/s (all tokens of the batch, image tokens included, per GPU), model TFLOP/s,
MFU and peak memory.

How FLOPs are counted: torch's FlopCounterMode records every matrix multiply and attention kernel of ONE step
(forward + backward, gradient checkpointing off while counting, so recomputation is never counted). That is the
model FLOPs of LoRA training: the forward through all weights, input gradients through the frozen layers that
lie between the loss and a trainable parameter, and weight gradients only for the trainable parameters (LoRA
and the projector). Frozen weights need no weight gradients, so a LoRA step costs ~2x the forward FLOPs, not
the 3x (6N per token) of full finetuning; MFU here is measured against that smaller, actually required number.
The vision tower is frozen with nothing trainable before it, so it runs forward only.
MFU = counted FLOPs per second / the GPU's dense bf16 peak (H100/H200 SXM: 989 TFLOP/s; --peak-tflops to set).
Target: >= 40 % MFU on an H100 for the training step.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FAMILIES = ("qwen", "llava", "idefics")
MODES = ("torch", "zero2")
PEAK_TFLOPS = {"H100 PCIe": 756.0, "H100": 989.4, "H200": 989.4, "GH200": 989.4, "A100": 312.0, "L40S": 362.0}

# Each family's real 7B-class geometry, and a tiny one of the same shape for CPU tests.
REAL = {
    "qwen": dict(image_size=448, patch_size=14, hidden=3584, intermediate=18944, layers=28, heads=28, kv_heads=4,
                 vocab=152064, rope_theta=1e6, mrope_section=[16, 24, 24], v_hidden=1280, v_intermediate=3420,
                 v_layers=32, v_heads=16, window=112, fullatt=[7, 15, 23, 31]),
    "llava": dict(image_size=336, patch_size=14, hidden=4096, intermediate=11008, layers=32, heads=32, kv_heads=32,
                  vocab=32064, rope_theta=1e4, v_hidden=1024, v_intermediate=4096, v_layers=24, v_heads=16),
    "idefics": dict(image_size=364, patch_size=14, hidden=4096, intermediate=14336, layers=32, heads=32, kv_heads=8,
                    vocab=128259, rope_theta=5e5, v_hidden=1152, v_intermediate=4304, v_layers=27, v_heads=16,
                    scale_factor=2),
}
TINY = {
    "qwen": {**REAL["qwen"], "image_size": 56, "hidden": 64, "intermediate": 128, "layers": 2, "heads": 4,
             "kv_heads": 2, "vocab": 1000, "mrope_section": [2, 3, 3], "v_hidden": 32, "v_intermediate": 64,
             "v_layers": 2, "v_heads": 2, "window": 28, "fullatt": [1]},
    "llava": {**REAL["llava"], "image_size": 56, "hidden": 64, "intermediate": 128, "layers": 2, "heads": 4,
              "kv_heads": 4, "vocab": 1000, "v_hidden": 32, "v_intermediate": 64, "v_layers": 2, "v_heads": 2},
    "idefics": {**REAL["idefics"], "image_size": 56, "hidden": 64, "intermediate": 128, "layers": 2, "heads": 4,
                "kv_heads": 2, "vocab": 1000, "v_hidden": 32, "v_intermediate": 64, "v_layers": 2, "v_heads": 2},
}


def geometry(family: str, size: str) -> dict:
    if size not in ("real", "tiny"):
        raise ValueError(f"size={size!r}; expected 'real' or 'tiny'")
    return (REAL if size == "real" else TINY)[family]


def build_processor(family: str, g: dict):
    """The family's processor with the real image geometry and a tokenizer trained locally (no download)."""
    from transformers import (
        CLIPImageProcessorPil,
        Idefics3ImageProcessorPil,
        Idefics3Processor,
        LlavaProcessor,
        Qwen2VLImageProcessorPil,
    )

    from transfer.embedded.tiny import (
        IDEFICS_CHAT,
        IDEFICS_SPECIAL,
        LLAVA_CHAT,
        MEAN_STD,
        QWEN_CHAT,
        QWEN_SPECIAL,
        build_tokenizer,
    )
    from transfer.models.families import Qwen25VLImageOnlyProcessor

    img, patch = g["image_size"], g["patch_size"]
    corpus = [q.prompt for q in questions(8, 32)] + ["USER: ASSISTANT: User: Assistant: A B C D", " A B C D"]
    if family == "llava":
        ip = CLIPImageProcessorPil(size={"shortest_edge": img}, crop_size={"height": img, "width": img}, **MEAN_STD)
        return LlavaProcessor(image_processor=ip, tokenizer=build_tokenizer(corpus, ["<image>"], 400),
                              patch_size=patch, num_additional_image_tokens=1,
                              vision_feature_select_strategy="default", chat_template=LLAVA_CHAT)
    if family == "qwen":
        ip = Qwen2VLImageProcessorPil(patch_size=patch, merge_size=2, temporal_patch_size=2, min_pixels=img * img,
                                      max_pixels=img * img, **MEAN_STD)
        return Qwen25VLImageOnlyProcessor(image_processor=ip, tokenizer=build_tokenizer(corpus, QWEN_SPECIAL, 400),
                                          chat_template=QWEN_CHAT)
    ip = Idefics3ImageProcessorPil(do_image_splitting=False, size={"longest_edge": img},
                                   max_image_size={"longest_edge": img}, **MEAN_STD)
    return Idefics3Processor(image_processor=ip, tokenizer=build_tokenizer(corpus, IDEFICS_SPECIAL, 400),
                             image_seq_len=(img // patch) ** 2 // g["scale_factor"] ** 2, chat_template=IDEFICS_CHAT)


def build_config(family: str, g: dict, tok):
    """The family's transformers config with geometry `g`; special token ids from the local tokenizer."""
    from transformers import (
        CLIPVisionConfig,
        Idefics3Config,
        Idefics3VisionConfig,
        LlamaConfig,
        LlavaConfig,
        Qwen2_5_VLConfig,
    )

    text = dict(vocab_size=g["vocab"], hidden_size=g["hidden"], intermediate_size=g["intermediate"],
                num_hidden_layers=g["layers"], num_attention_heads=g["heads"], num_key_value_heads=g["kv_heads"],
                max_position_embeddings=32768, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                eos_token_id=tok.eos_token_id, rms_norm_eps=1e-6)
    vision = dict(hidden_size=g["v_hidden"], intermediate_size=g["v_intermediate"])
    if family == "llava":
        return LlavaConfig(
            vision_config=CLIPVisionConfig(image_size=g["image_size"], patch_size=g["patch_size"],
                                           num_hidden_layers=g["v_layers"], num_attention_heads=g["v_heads"],
                                           projection_dim=768, **vision),
            text_config=LlamaConfig(**text, rope_parameters={"rope_type": "default", "rope_theta": g["rope_theta"]}),
            image_token_id=tok.convert_tokens_to_ids("<image>"), vision_feature_layer=-2,
            vision_feature_select_strategy="default", projector_hidden_act="gelu",
            image_seq_length=(g["image_size"] // g["patch_size"]) ** 2)
    if family == "qwen":
        return Qwen2_5_VLConfig(
            text_config={**text, "rope_parameters": {"rope_type": "default", "rope_theta": g["rope_theta"],
                                                     "mrope_section": g["mrope_section"]}},
            vision_config=dict(depth=g["v_layers"], num_heads=g["v_heads"], patch_size=g["patch_size"],
                               spatial_merge_size=2, temporal_patch_size=2, window_size=g["window"],
                               fullatt_block_indexes=g["fullatt"], out_hidden_size=g["hidden"], hidden_act="silu",
                               **vision),
            **{f"{k}_token_id": tok.convert_tokens_to_ids(f"<|{k}_pad|>") for k in ("image", "video")},
            vision_start_token_id=tok.convert_tokens_to_ids("<|vision_start|>"),
            vision_end_token_id=tok.convert_tokens_to_ids("<|vision_end|>"))
    return Idefics3Config(
        vision_config=Idefics3VisionConfig(image_size=g["image_size"], patch_size=g["patch_size"],
                                           num_hidden_layers=g["v_layers"], num_attention_heads=g["v_heads"], **vision),
        text_config=LlamaConfig(**text, rope_parameters={"rope_type": "default", "rope_theta": g["rope_theta"]}),
        image_token_id=tok.convert_tokens_to_ids("<image>"), scale_factor=g["scale_factor"])


def lora_settings(family: str):
    """The LoRA block of conf/model/<family>.yaml (rank, alpha, target regex, trainable projector) as a LoraSpec."""
    from omegaconf import OmegaConf

    from transfer.spec import LoraSpec, parse

    return parse(LoraSpec, OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "model" / f"{family}.yaml").lora),
                 "model.lora.")


def build(family: str, size: str, device: str, dtype: torch.dtype, seed: int = 0):
    """(LoRA-wrapped model with random weights, processor): the family at `size` ('real' or 'tiny')."""
    from transformers import AutoModelForImageTextToText

    from transfer.train import apply_lora

    g = geometry(family, size)
    processor = build_processor(family, g)
    config = build_config(family, g, processor.tokenizer)
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(config, dtype=dtype)
    model.config.use_cache = False
    return apply_lora(model, lora_settings(family)), processor


def questions(n: int, image_size: int) -> list:
    """n single-image BLINK-style questions at the family's image size (content does not matter for speed)."""
    from PIL import Image, ImageDraw

    from transfer.data.prompts import format_prompt
    from transfer.data.question import Question

    out = []
    for i in range(n):
        image = Image.new("RGB", (image_size, image_size), "white")
        ImageDraw.Draw(image).ellipse([8, 8, image_size - 8, image_size - 8], fill=(40 * (i % 6), 90, 200))
        out.append(Question(f"val_Bench_{i}", "Bench", format_prompt("How many discs are there?", ["1", "2", "3", "4"]),
                            [image], ["1", "2", "3", "4"], i % 4))
    return out


def batch_for(family: str, processor, n: int, image_size: int, device: str, dtype: torch.dtype) -> dict:
    """A training batch of n questions through the project's encoding path, on `device`."""
    from transfer.batch import training_batch
    from transfer.encode import encode_questions

    prefix = "" if family == "qwen" else " "
    examples = encode_questions(processor, family, prefix, questions(n, image_size))
    tok = processor.tokenizer
    batch = training_batch(examples, family, tok.pad_token_id, tok.eos_token_id)
    return {k: v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device) for k, v in batch.items()}


def count_flops(step: Callable[[], None]) -> int:
    """Matrix-multiply and attention FLOPs that `step` executes (torch's FlopCounterMode)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


def train_step_fn(model, batch: dict, optimizer=None, engine=None) -> Callable[[], None]:
    def step() -> None:
        if engine is not None:
            loss = engine(**batch).loss
            engine.backward(loss)
            engine.step()
            return
        loss = model(**batch).loss
        loss.backward()
        if optimizer is not None:
            optimizer.step()
        model.zero_grad(set_to_none=True)
    return step


def eval_step_fn(model, batch: dict) -> Callable[[], None]:
    inputs = {k: v for k, v in batch.items() if k != "labels"}

    def step() -> None:
        with torch.no_grad():
            model(**inputs)
    return step


def peak_tflops(name: str, override: float | None) -> float | None:
    if override:
        return override
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def timed(step: Callable[[], None], warmup: int, steps: int) -> float:
    """Seconds per step (CUDA-synchronised) after `warmup` untimed steps."""
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def _deepspeed_engine(model, lr: float, batch_size: int):
    import deepspeed

    from transfer.distributed import setup_env

    setup_env()
    config = {"train_micro_batch_size_per_gpu": batch_size, "gradient_accumulation_steps": 1,
              "zero_optimization": {"stage": 2, "overlap_comm": True, "contiguous_gradients": True},
              "bf16": {"enabled": True}, "optimizer": {"type": "AdamW", "params": {"lr": lr}},
              "zero_allow_untested_optimizer": True, "steps_per_print": 10**9}
    params = [p for p in model.parameters() if p.requires_grad]
    engine, *_ = deepspeed.initialize(model=model, model_parameters=params, config=config)
    return engine


def bench_family(family: str, args, device_name: str) -> list[dict]:
    model, processor = build(family, "real", "cuda", torch.bfloat16)
    image_size = geometry(family, "real")["image_size"]
    train = batch_for(family, processor, args.train_batch, image_size, "cuda", torch.bfloat16)
    evals = batch_for(family, processor, args.eval_batch, image_size, "cuda", torch.bfloat16)
    peak = peak_tflops(device_name, args.peak_tflops)
    train_flops = count_flops(train_step_fn(model, train))        # gradient checkpointing still off here
    eval_flops = count_flops(eval_step_fn(model, evals))
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    rows = []

    def row(mode: str, kind: str, seconds: float, flops: int, batch: dict) -> dict:
        tokens = int(batch["attention_mask"].sum())
        tflops = flops / seconds / 1e12
        return {"family": family, "mode": mode, "step": kind, "batch": int(batch["input_ids"].shape[0]),
                "seq_len": int(batch["input_ids"].shape[1]), "tokens_per_s": tokens / seconds,
                "step_s": seconds, "tflops": tflops, "mfu": tflops / peak if peak else None,
                "flops_per_step": flops, "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30,
                "gradient_checkpointing": args.gradient_checkpointing}

    for mode in args.modes:
        torch.cuda.reset_peak_memory_stats()
        if mode == "torch":
            optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, fused=True)
            seconds = timed(train_step_fn(model, train, optimizer), args.warmup, args.steps)
            rows.append(row(mode, "train", seconds, train_flops, train))
            del optimizer
        else:
            engine = _deepspeed_engine(model, 1e-4, args.train_batch)
            seconds = timed(train_step_fn(model, train, engine=engine), args.warmup, args.steps)
            rows.append(row(mode, "train", seconds, train_flops, train))
            model = engine.module
    torch.cuda.reset_peak_memory_stats()
    model.eval()
    seconds = timed(eval_step_fn(model, evals), args.warmup, args.steps)
    rows.append(row("torch", "eval", seconds, eval_flops, evals))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES))
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES),
                        help="torch: one GPU, plain AdamW; zero2: DeepSpeed ZeRO-2 (over every torchrun process)")
    parser.add_argument("--train-batch", type=int, default=16, help="questions per GPU per training step")
    parser.add_argument("--eval-batch", type=int, default=64, help="questions per evaluation forward")
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak of the GPU (TFLOP/s)")
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit(f"bench/gpu.py needs a CUDA GPU, and torch {torch.__version__} sees none "
                         f"(CUDA build: {torch.version.cuda or 'no'}); FLOP counting is tested on CPU by "
                         "tests/test_bench_gpu.py")
    torch.backends.cuda.matmul.allow_tf32 = True
    device_name = torch.cuda.get_device_name()
    print(f"{device_name}, peak {peak_tflops(device_name, args.peak_tflops)} TFLOP/s bf16 dense")
    rows = []
    for family in args.families:
        for r in bench_family(family, args, device_name):
            rows.append(r)
            mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a"
            print(f"{family:8} {r['mode']:6} {r['step']:5} batch {r['batch']:3} x {r['seq_len']:5} tokens: "
                  f"{r['tokens_per_s']:9.0f} tokens/s  {r['tflops']:6.1f} TFLOP/s  MFU {mfu:>6}  "
                  f"peak {r['peak_mem_gib']:5.1f} GiB", flush=True)
        torch.cuda.empty_cache()
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
