"""Real-shape smoke checkpoints: each family's real model class with random weights at reduced depth and width, the
real processor files (`transfer.models.reference`), plus a BLINK-layout fixture with realistic images.

A smoke checkpoint keeps everything that decides input shapes exactly as in the real checkpoint (patch size,
image size, merge size / scale factor, image tokens per image, vision_feature_layer, projector, the image
processor's settings as the real checkpoint stores them, the chat template, the special tokens and their order),
and shrinks only what does not: 2 LM layers, 2 vision layers, widths of 64-128, the reference tokenizer.

Model configuration values (transformers = huggingface/transformers):

llava-hf/llava-1.5-7b-hf config.json: CLIP ViT-L/14 at 336 px (24 layers x 1024), vision_feature_layer -2,
  "default" strategy, projector_hidden_act gelu, image_token_index 32000, pad_token_id 32001, vocab 32064;
  transformers configuration_llava.py: image_seq_length 576, multimodal_projector_bias True.
Qwen/Qwen2.5-VL-7B-Instruct config.json (transformers configuration_qwen2_5_vl.py and public copies): vision depth
  32 x 1280, 16 heads, window_size 112, fullatt_block_indexes [7, 15, 23, 31], out_hidden_size 3584,
  tokens_per_second 2; text 28 heads / 4 KV heads, head_dim 128, mrope_section [16, 24, 24], rope_theta 1e6;
  image_token_id 151655, video 151656, vision_start 151652, vision_end 151653.
HuggingFaceM4/Idefics3-8B-Llama3 config.json: image_token_id 128257, scale_factor 2, SigLIP 364 px / patch 14
  (1152 wide, 27 layers); generation_config.json: bos 128000, eos [128001, 128008, 128009, 128258], pad 128002.
"""
from __future__ import annotations

import argparse
import io
from pathlib import Path

import polars as pl
import torch
from PIL import Image
from transformers import (
    CLIPVisionConfig,
    GenerationConfig,
    Idefics3Config,
    Idefics3ForConditionalGeneration,
    Idefics3VisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
)

from transfer.atomic import write_parquet
from transfer.data.blink import IMAGE_SLOTS, SCHEMA
from transfer.data.prompts import answer_label, format_prompt
from transfer.embedded.suite import generate_rows
from transfer.models.reference import REAL_TOKENS, build_tokenizer, save_processor_files
from transfer.spec import FAMILIES
from transfer.tasks import TASK_NAMES

# Reduced widths (2 LM layers, 2 vision layers); head counts keep each family's attention kind (GQA or MHA).
WIDTHS = {
    "tiny": dict(hidden=64, heads=4, vision_hidden=32, vision_heads=2),
    "small": dict(hidden=128, heads=4, vision_hidden=64, vision_heads=2),
}
KV_HEADS = {"llava": 4, "qwen": 2, "idefics": 2}   # real: 32 of 32 (MHA), 4 of 28, 8 of 32
LAYERS = 2

# Fixture image sizes (width, height): landscape and portrait, longest edge 640-1500 px; an odd count, so that
# alternating JPEG and PNG covers every size in both formats.
FIXTURE_SIZES = [(640, 480), (800, 600), (1024, 768), (1500, 1000), (1280, 720), (480, 640), (1000, 1500)]


def _text_config(tok, family: str, w: dict) -> dict:
    return dict(vocab_size=len(tok), hidden_size=w["hidden"], intermediate_size=2 * w["hidden"],
                num_hidden_layers=LAYERS, num_attention_heads=w["heads"], num_key_value_heads=KV_HEADS[family],
                max_position_embeddings=32768, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                eos_token_id=tok.eos_token_id)


def _vision(w: dict) -> dict:
    return dict(hidden_size=w["vision_hidden"], intermediate_size=2 * w["vision_hidden"])


def _build_llava(tok, w: dict):
    text = _text_config(tok, "llava", w) | {"rope_parameters": {"rope_type": "default", "rope_theta": 1e4}}
    cfg = LlavaConfig(
        vision_config=CLIPVisionConfig(image_size=336, patch_size=14, num_hidden_layers=LAYERS,
                                       num_attention_heads=w["vision_heads"], projection_dim=w["vision_hidden"],
                                       **_vision(w)),
        text_config=LlamaConfig(**text), image_token_id=tok.convert_tokens_to_ids("<image>"),
        pad_token_id=tok.pad_token_id, vision_feature_layer=-2, vision_feature_select_strategy="default",
        projector_hidden_act="gelu", image_seq_length=576, multimodal_projector_bias=True, tie_word_embeddings=False)
    return LlavaForConditionalGeneration(cfg)


def _mrope_section(head_dim: int) -> list[int]:
    """The real [16, 24, 24] (of head_dim 128 / 2) scaled to a smaller head dim."""
    scale = head_dim // 2 / 64
    return [round(16 * scale), round(24 * scale), round(24 * scale)]


def _build_qwen(tok, w: dict):
    rope = {"rope_type": "default", "rope_theta": 1e6, "mrope_section": _mrope_section(w["hidden"] // w["heads"])}
    cfg = Qwen2_5_VLConfig(
        text_config=_text_config(tok, "qwen", w) | {"rope_parameters": rope, "tie_word_embeddings": False},
        vision_config=dict(depth=LAYERS, num_heads=w["vision_heads"], patch_size=14, spatial_merge_size=2,
                           temporal_patch_size=2, window_size=112, fullatt_block_indexes=[LAYERS - 1],
                           out_hidden_size=w["hidden"], hidden_act="silu", tokens_per_second=2, **_vision(w)),
        image_token_id=tok.convert_tokens_to_ids("<|image_pad|>"),
        video_token_id=tok.convert_tokens_to_ids("<|video_pad|>"),
        vision_start_token_id=tok.convert_tokens_to_ids("<|vision_start|>"),
        vision_end_token_id=tok.convert_tokens_to_ids("<|vision_end|>"), tie_word_embeddings=False)
    return Qwen2_5_VLForConditionalGeneration(cfg)


def _build_idefics(tok, w: dict):
    text = _text_config(tok, "idefics", w) | {"rope_parameters": {"rope_type": "default", "rope_theta": 5e5}}
    cfg = Idefics3Config(
        vision_config=Idefics3VisionConfig(image_size=364, patch_size=14, num_hidden_layers=LAYERS,
                                           num_attention_heads=w["vision_heads"], hidden_act="gelu_pytorch_tanh",
                                           **_vision(w)),
        text_config=LlamaConfig(**text), image_token_id=tok.convert_tokens_to_ids("<image>"), scale_factor=2,
        pad_token_id=tok.pad_token_id, tie_word_embeddings=False)
    return Idefics3ForConditionalGeneration(cfg)


_BUILDERS = {"llava": _build_llava, "qwen": _build_qwen, "idefics": _build_idefics}


def build_smoke(family: str, out_dir: Path, *, width: str = "small", seed: int = 0) -> Path:
    """Build and save a random-weight `family` checkpoint with the real geometry and the real processor files."""
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; expected one of: {', '.join(FAMILIES)}")
    if width not in WIDTHS:
        raise ValueError(f"unknown width {width!r}; expected one of: {', '.join(WIDTHS)}")
    tok = build_tokenizer(family)
    torch.manual_seed(seed)
    model = _BUILDERS[family](tok, WIDTHS[width])
    eos = [tok.convert_tokens_to_ids(t) for t in REAL_TOKENS[family]["generation_eos"]]
    model.generation_config = GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=eos,
                                               pad_token_id=tok.pad_token_id, do_sample=False)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    save_processor_files(family, tok, out_dir)
    return out_dir


def _image_bytes(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {"compress_level": 1}))
    return buffer.getvalue()


def _fixture_columns(task: str, rows: list, counter: int) -> tuple[dict[str, list], int]:
    """The BLINK columns of one task's val split; images resized to FIXTURE_SIZES, JPEG and PNG alternating."""
    columns: dict[str, list] = {name: [] for name in SCHEMA.names()}
    for n, row in enumerate(rows, start=1):
        idx = f"val_{task}_{n}"
        for k, slot in enumerate(IMAGE_SLOTS):
            if k >= len(row["images"]):
                columns[slot].append(None)
                continue
            fmt, ext = ("JPEG", "jpg") if counter % 2 == 0 else ("PNG", "png")
            size = FIXTURE_SIZES[counter % len(FIXTURE_SIZES)]
            image = row["images"][k].convert("RGB").resize(size, Image.Resampling.BICUBIC)
            columns[slot].append({"bytes": _image_bytes(image, fmt), "path": f"{idx}_{k + 1}.{ext}"})
            counter += 1
        columns["idx"].append(idx)
        columns["question"].append(row["question"])
        columns["sub_task"].append(row["sub_task"])
        columns["choices"].append(list(row["choices"]))
        columns["answer"].append(answer_label(row["answer"]))
        columns["prompt"].append(format_prompt(row["question"], list(row["choices"])))
        columns["explanation"].append(row["explanation"])
    return columns, counter


def write_blink_fixture(root: Path, *, per_task: int, seed: int = 0) -> Path:
    """`<root>/<Task>/val-00000-of-00001.parquet` for the 13 paper tasks: BLINK's columns, image and option counts,
    with images of realistic sizes (640-1500 px, several aspect ratios) stored as JPEG and PNG bytes."""
    root = Path(root)
    counter = seed
    for task in TASK_NAMES:
        rows = generate_rows(task, per_task, seed=seed, split="val", image_size=128)
        columns, counter = _fixture_columns(task, rows, counter)
        write_parquet(pl.DataFrame(columns, schema=SCHEMA), root / task / "val-00000-of-00001.parquet")
    return root


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build a real-shape smoke checkpoint of a VLM family.")
    parser.add_argument("--family", required=True, choices=FAMILIES)
    parser.add_argument("--out", required=True, type=Path, help="directory to save the checkpoint into")
    parser.add_argument("--width", default="small", choices=list(WIDTHS))
    parser.add_argument("--seed", default=0, type=int)
    args = parser.parse_args(argv)
    print(build_smoke(args.family, args.out, width=args.width, seed=args.seed))


if __name__ == "__main__":
    main()
