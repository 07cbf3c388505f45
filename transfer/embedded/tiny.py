"""Tiny random-init models of each family, built from the real transformers classes and saved to a directory.

The tokenizer is a byte-level BPE trained locally on the suite's own text (no hub download).
"""
from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    CLIPImageProcessorPil,
    CLIPVisionConfig,
    GenerationConfig,
    Idefics3Config,
    Idefics3ForConditionalGeneration,
    Idefics3ImageProcessorPil,
    Idefics3Processor,
    Idefics3VisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2VLImageProcessorPil,
)

from transfer.models.families import Qwen25VLImageOnlyProcessor

MEAN_STD = dict(image_mean=[0.5] * 3, image_std=[0.5] * 3)

LLAVA_CHAT = (
    "{% for m in messages %}{{ m['role'].upper() }}: {% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>\n{% else %}{{ c['text'] }}{% endif %}{% endfor %} {% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
QWEN_SPECIAL = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
QWEN_CHAT = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>{% else %}{{ c['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
IDEFICS_SPECIAL = ["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>"] + [
    f"<row_{i + 1}_col_{j + 1}>" for i in range(6) for j in range(6)
]
IDEFICS_CHAT = (
    "{% for m in messages %}{{ m['role'] | capitalize }}:{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>{% else %}{{ c['text'] }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)


def build_tokenizer(corpus: list[str], special_tokens: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained in-process on `corpus`; multimodal tokens are special tokens."""
    pad, bos, eos, unk = "<pad>", "<s>", "</s>", "<unk>"
    tok = Tokenizer(models.BPE(unk_token=unk))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[pad, bos, eos, unk] + special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=pad, unk_token=unk,
        extra_special_tokens=special_tokens, padding_side="right",
    )


def _text_config(tok, c: dict) -> dict:
    return dict(
        vocab_size=len(tok), hidden_size=c["hidden_size"], intermediate_size=2 * c["hidden_size"],
        num_hidden_layers=c["num_layers"], num_attention_heads=c["num_heads"], num_key_value_heads=c["num_heads"],
        max_position_embeddings=1024, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )


def _vision(c: dict) -> dict:
    return dict(hidden_size=c["vision_hidden_size"], intermediate_size=2 * c["vision_hidden_size"],
                num_hidden_layers=c["vision_layers"], num_attention_heads=c["num_heads"])


def _build_llava(corpus: list[str], c: dict):
    img, patch = c["image_size"], c["patch_size"]
    tok = build_tokenizer(corpus, ["<image>"], c["vocab_size"])
    ip = CLIPImageProcessorPil(size={"shortest_edge": img}, crop_size={"height": img, "width": img},
                               do_center_crop=True, **MEAN_STD)
    proc = LlavaProcessor(image_processor=ip, tokenizer=tok, patch_size=patch, num_additional_image_tokens=1,
                          vision_feature_select_strategy="default", chat_template=LLAVA_CHAT)
    cfg = LlavaConfig(
        vision_config=CLIPVisionConfig(image_size=img, patch_size=patch, projection_dim=c["vision_hidden_size"],
                                       **_vision(c)),
        text_config=LlamaConfig(**_text_config(tok, c)),
        image_token_id=tok.convert_tokens_to_ids("<image>"), vision_feature_layer=-1,
        vision_feature_select_strategy="default", image_seq_length=(img // patch) ** 2,
    )
    return LlavaForConditionalGeneration(cfg), proc


def _build_qwen(corpus: list[str], c: dict):
    img, patch, merge = c["image_size"], c["patch_size"], c["merge_size"]
    tok = build_tokenizer(corpus, QWEN_SPECIAL, c["vocab_size"])
    ip = Qwen2VLImageProcessorPil(patch_size=patch, merge_size=merge, temporal_patch_size=2,
                                  min_pixels=img * img, max_pixels=img * img, **MEAN_STD)
    proc = Qwen25VLImageOnlyProcessor(image_processor=ip, tokenizer=tok, chat_template=QWEN_CHAT)
    half = c["hidden_size"] // c["num_heads"] // 2        # M-RoPE sections (t, h, w) must sum to head_dim / 2
    hw = 3 * half // 8
    text = _text_config(tok, c)
    text["rope_parameters"] = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [half - 2 * hw, hw, hw]}
    vision = _vision(c)
    cfg = Qwen2_5_VLConfig(
        text_config=text,
        vision_config=dict(depth=vision.pop("num_hidden_layers"), num_heads=vision.pop("num_attention_heads"),
                           patch_size=patch, spatial_merge_size=merge, temporal_patch_size=2, window_size=4 * patch,
                           fullatt_block_indexes=[c["vision_layers"] - 1], out_hidden_size=c["hidden_size"], **vision),
        **{f"{k}_token_id": tok.convert_tokens_to_ids(f"<|{k}_pad|>") for k in ("image", "video")},
        vision_start_token_id=tok.convert_tokens_to_ids("<|vision_start|>"),
        vision_end_token_id=tok.convert_tokens_to_ids("<|vision_end|>"),
    )
    return Qwen2_5_VLForConditionalGeneration(cfg), proc


def _build_idefics(corpus: list[str], c: dict):
    img, patch, scale = c["image_size"], c["patch_size"], c["scale_factor"]
    tok = build_tokenizer(corpus, IDEFICS_SPECIAL, c["vocab_size"])
    ip = Idefics3ImageProcessorPil(do_image_splitting=False, size={"longest_edge": img},
                                   max_image_size={"longest_edge": img}, **MEAN_STD)
    proc = Idefics3Processor(image_processor=ip, tokenizer=tok, image_seq_len=(img // patch) ** 2 // scale ** 2,
                             chat_template=IDEFICS_CHAT)
    cfg = Idefics3Config(
        vision_config=Idefics3VisionConfig(image_size=img, patch_size=patch, **_vision(c)),
        text_config=LlamaConfig(**_text_config(tok, c)),
        image_token_id=tok.convert_tokens_to_ids("<image>"), scale_factor=scale,
    )
    return Idefics3ForConditionalGeneration(cfg), proc


_BUILDERS = {"llava": _build_llava, "qwen": _build_qwen, "idefics": _build_idefics}


def build_tiny(family: str, arch: dict, corpus: list[str], seed: int, out_dir: Path) -> Path:
    """Build a random-init model of `family` with architecture `arch`, save model + processor to `out_dir`."""
    torch.manual_seed(seed)
    model, proc = _BUILDERS[family](corpus, dict(arch))
    tok = proc.tokenizer
    model.generation_config = GenerationConfig(pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                                               bos_token_id=tok.bos_token_id, do_sample=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    proc.save_pretrained(out_dir)
    return out_dir
