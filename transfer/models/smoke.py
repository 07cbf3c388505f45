"""Real-shape smoke checkpoints: each family's real model class, image processor, chat template and special
tokens, with random weights at reduced depth and width, plus a BLINK-layout fixture with realistic images.

A smoke checkpoint keeps everything that decides input shapes exactly as in the real checkpoint (patch size,
image size, merge size / scale factor, image tokens per image, vision_feature_layer, projector, the image
processor's settings, the chat template, the special tokens and their order), and shrinks only what does not:
2 LM layers, 2 vision layers, widths of 64-128, a byte-level BPE vocabulary of ~1000 trained locally.

Where each real value comes from (hub files read as public copies; transformers = huggingface/transformers):

llava-hf/llava-1.5-7b-hf (copies of the hub repo in tung2kg1/AI-Stock-Chart-Analysis, llava-1.5-7b-hf/):
  preprocessor_config.json: CLIPImageProcessor, size shortest_edge 336, crop_size 336x336, center crop,
    do_convert_rgb, resample 3 (bicubic), rescale 1/255, OpenAI CLIP mean/std.
  processor_config.json: patch_size 14, num_additional_image_tokens 1, vision_feature_select_strategy default,
    image_token <image>.
  chat_template.jinja (also openvinotoolkit/openvino.genai src/cpp/src/tokenizer/chat_template_fallback_map.hpp).
  config.json: CLIP ViT-L/14 at 336 px (24 layers x 1024), vision_feature_layer -2, "default" strategy,
    projector_hidden_act gelu, image_token_index 32000, pad_token_id 32001, vocab 32064; transformers
    configuration_llava.py: image_seq_length 576, multimodal_projector_bias True.
  tokenizer_config.json / special_tokens_map.json / added_tokens.json: <unk> 0, <s> 1, </s> 2 before the text
    vocabulary, <image> 32000 and <pad> 32001 after it; add_bos_token true; padding_side left.
Qwen/Qwen2.5-VL-7B-Instruct:
  preprocessor_config.json (hub copies: unsloth/Qwen2.5-VL-7B-Instruct-bnb-4bit, AngelSlim/Qwen2.5-VL-72B-Instruct-
    FP8-Dynamic): Qwen2VLImageProcessor, min_pixels 3136, max_pixels 12845056, patch_size 14, merge_size 2,
    temporal_patch_size 2, resample 3, OpenAI CLIP mean/std.
  chat_template.json (transformers tests/models/qwen2_5_vl/test_processor_qwen2_5_vl.py prepare_processor_dict;
    the same string in optimum-intel-internal-testing/tiny-random-qwen2.5-vl chat_template.json): default system
    prompt "You are a helpful assistant.", <|vision_start|><|image_pad|><|vision_end|> per image.
  config.json (transformers configuration_qwen2_5_vl.py and public copies): vision depth 32 x 1280, 16 heads,
    window_size 112, fullatt_block_indexes [7, 15, 23, 31], out_hidden_size 3584, tokens_per_second 2;
    text 28 heads / 4 KV heads, head_dim 128, mrope_section [16, 24, 24], rope_theta 1e6; image_token_id
    151655, video 151656, vision_start 151652, vision_end 151653.
  tokenizer: <|endoftext|> 151643 (pad), <|im_start|> 151644, <|im_end|> 151645 (eos), object_ref/box/quad
    tokens, <|vision_start|> .. <|video_pad|> 151652-151656, all after the text vocabulary; no BOS.
HuggingFaceM4/Idefics3-8B-Llama3 (hub blob pages of the repo):
  preprocessor_config.json: Idefics3ImageProcessor, do_image_splitting true, size longest_edge 1456 (4 x 364),
    resample 1 (Lanczos), do_pad, SigLIP mean/std 0.5; max_image_size longest_edge 364 (in the first revision
    6a10ffe, the Idefics3ImageProcessor default since).
  processor_config.json / chat_template.json: the chat template below; image_seq_len 169 = (364/14)^2 / 2^2
    (transformers processing_idefics3.py default, tests/models/idefics3/test_processing_idefics3.py).
  config.json: image_token_id 128257, scale_factor 2, SigLIP 364 px / patch 14 (1152 wide, 27 layers);
    generation_config.json: bos 128000, eos [128001, 128008, 128009, 128258], pad 128002.
  tokenizer (hf-internal-testing/tiny-random-Idefics3ForConditionalGeneration special_tokens_map.json, made from
    the real one): bos <|begin_of_text|>, eos <|end_of_text|>, pad <|reserved_special_token_0|>, added
    <fake_token_around_image> <image> <end_of_utterance>. <global-img> and <row_i_col_j> are plain text in the
    real vocabulary (the transformers test tokenizes them to several ids), so they are not special tokens here.
"""
from __future__ import annotations

import argparse
import io
from pathlib import Path

import polars as pl
import torch
from PIL import Image
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
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

from transfer.atomic import write_parquet
from transfer.data.blink import IMAGE_SLOTS, SCHEMA
from transfer.data.prompts import answer_label, format_prompt
from transfer.embedded.suite import generate_rows
from transfer.models.families import Qwen25VLImageOnlyProcessor
from transfer.spec import FAMILIES
from transfer.tasks import TASK_NAMES

CLIP_MEAN, CLIP_STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]

# Each family's real checkpoint, its image-processor settings ("image_processor", as in preprocessor_config.json)
# and processor settings ("processor", as in processor_config.json).
REAL_PROCESSOR: dict[str, dict] = {
    "llava": {
        "checkpoint": "llava-hf/llava-1.5-7b-hf",
        "image_processor": dict(do_resize=True, size={"shortest_edge": 336}, resample=3, do_center_crop=True,
                                crop_size={"height": 336, "width": 336}, do_rescale=True, rescale_factor=1 / 255,
                                do_normalize=True, image_mean=CLIP_MEAN, image_std=CLIP_STD, do_convert_rgb=True),
        "processor": dict(patch_size=14, num_additional_image_tokens=1, vision_feature_select_strategy="default"),
    },
    "qwen": {
        "checkpoint": "Qwen/Qwen2.5-VL-7B-Instruct",
        # size = the file's min_pixels / max_pixels (newer revisions of the file also state it as this size)
        "image_processor": dict(do_resize=True, size={"shortest_edge": 3136, "longest_edge": 12845056}, patch_size=14,
                                merge_size=2, temporal_patch_size=2, resample=3, do_rescale=True,
                                rescale_factor=1 / 255, do_normalize=True, image_mean=CLIP_MEAN, image_std=CLIP_STD,
                                do_convert_rgb=True),
        "processor": {},
    },
    "idefics": {
        "checkpoint": "HuggingFaceM4/Idefics3-8B-Llama3",
        "image_processor": dict(do_resize=True, size={"longest_edge": 4 * 364}, max_image_size={"longest_edge": 364},
                                do_image_splitting=True, resample=1, do_pad=True, do_rescale=True,
                                rescale_factor=1 / 255, do_normalize=True, image_mean=[0.5] * 3, image_std=[0.5] * 3,
                                do_convert_rgb=True),
        "processor": dict(image_seq_len=169),
    },
}

CHAT_TEMPLATES = {
    "llava": (
        "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}"
        "{% endif %}{# Render all images first #}{% for content in message['content'] | selectattr('type', "
        "'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}{# Render all text next #}{% if message['role'] != "
        "'assistant' %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
        "{{ content['text'] + ' '}}{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', "
        "'equalto', 'text') %}{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}"
        "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
    ),
    "qwen": (
        "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in "
        "messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful "
        "assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
        "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] "
        "== 'image' or 'image' in content or 'image_url' in content %}{% set image_count.value = image_count.value "
        "+ 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|>"
        "<|vision_end|>{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = "
        "video_count.value + 1 %}{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|>"
        "<|video_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}"
        "<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    ),
    "idefics": (
        "<|begin_of_text|>{% for message in messages %}{{message['role'].capitalize()}}{% if message['content'][0]"
        "['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}{% for line in message['content'] %}{% if "
        "line['type'] == 'text' %}{{line['text']}}{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}"
        "{% endfor %}<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
    ),
}

QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]
# Special tokens in the real id order: "before" precede the text vocabulary, "after" follow it; "extra" are the
# tokenizer's additional special tokens.
REAL_TOKENS: dict[str, dict] = {
    "llava": dict(before=["<unk>", "<s>", "</s>"], after=["<image>", "<pad>"], bos="<s>", eos="</s>", pad="<pad>",
                  unk="<unk>", add_bos=True, padding_side="left", extra=["<image>"], generation_eos=["</s>"]),
    "qwen": dict(before=[], after=QWEN_SPECIAL, bos=None, eos="<|im_end|>", pad="<|endoftext|>", unk=None,
                 add_bos=False, padding_side="right", extra=QWEN_SPECIAL[1:],
                 generation_eos=["<|im_end|>", "<|endoftext|>"]),
    "idefics": dict(before=[], after=["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                                      "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>",
                                      "<fake_token_around_image>", "<image>", "<end_of_utterance>"],
                    bos="<|begin_of_text|>", eos="<|end_of_text|>", pad="<|reserved_special_token_0|>", unk=None,
                    add_bos=True, padding_side="left",
                    extra=["<fake_token_around_image>", "<image>", "<end_of_utterance>"],
                    generation_eos=["<|end_of_text|>", "<|eom_id|>", "<|eot_id|>", "<end_of_utterance>"]),
}

# Reduced widths (2 LM layers, 2 vision layers); head counts keep each family's attention kind (GQA or MHA).
WIDTHS = {
    "tiny": dict(hidden=64, heads=4, vision_hidden=32, vision_heads=2, vocab=600),
    "small": dict(hidden=128, heads=4, vision_hidden=64, vision_heads=2, vocab=1000),
}
KV_HEADS = {"llava": 4, "qwen": 2, "idefics": 2}   # real: 32 of 32 (MHA), 4 of 28, 8 of 32
LAYERS = 2
LETTERS = ["A", "B", "C", "D", " A", " B", " C", " D"]

# Fixture image sizes (width, height): landscape and portrait, longest edge 640-1500 px; an odd count, so that
# alternating JPEG and PNG covers every size in both formats.
FIXTURE_SIZES = [(640, 480), (800, 600), (1024, 768), (1500, 1000), (1280, 720), (480, 640), (1000, 1500)]


def _corpus(seed: int) -> list[str]:
    """The suite's prompts and the chat scaffolding: the text the local tokenizer is trained on."""
    prompts = [format_prompt(r["question"], r["choices"])
               for task in TASK_NAMES for r in generate_rows(task, 4, seed=seed, split="train", image_size=64)]
    scaffold = ["USER: ASSISTANT: User: Assistant: system user assistant You are a helpful assistant.",
                "<global-img> <row_1_col_1> " * 4] + [" A B C D (A) (B) (C) (D) A\nB\nC\nD"] * 50
    return prompts + scaffold


def build_tokenizer(family: str, corpus: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE with the real special tokens in the real order (and BOS prepending where real)."""
    spec = REAL_TOKENS[family]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=spec["before"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in spec["after"]])
    if spec["add_bos"]:
        bos = spec["bos"]
        tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                           special_tokens=[(bos, tok.token_to_id(bos))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=spec["bos"], eos_token=spec["eos"],
                                   pad_token=spec["pad"], unk_token=spec["unk"], extra_special_tokens=spec["extra"],
                                   padding_side=spec["padding_side"])
    split = [t for t in LETTERS if len(fast(t, add_special_tokens=False)["input_ids"]) != 1]
    if split:
        raise ValueError(f"answer letters {split} are not single tokens; raise the vocabulary size")
    return fast


def _image_processor(family: str):
    settings = REAL_PROCESSOR[family]["image_processor"]
    cls = {"llava": CLIPImageProcessorPil, "qwen": Qwen2VLImageProcessorPil, "idefics": Idefics3ImageProcessorPil}
    return cls[family](**settings)


def _text_config(tok, family: str, w: dict) -> dict:
    return dict(vocab_size=len(tok), hidden_size=w["hidden"], intermediate_size=2 * w["hidden"],
                num_hidden_layers=LAYERS, num_attention_heads=w["heads"], num_key_value_heads=KV_HEADS[family],
                max_position_embeddings=32768, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                eos_token_id=tok.eos_token_id)


def _vision(w: dict) -> dict:
    return dict(hidden_size=w["vision_hidden"], intermediate_size=2 * w["vision_hidden"])


def _build_llava(tok, w: dict):
    proc = LlavaProcessor(image_processor=_image_processor("llava"), tokenizer=tok,
                          chat_template=CHAT_TEMPLATES["llava"], **REAL_PROCESSOR["llava"]["processor"])
    text = _text_config(tok, "llava", w) | {"rope_parameters": {"rope_type": "default", "rope_theta": 1e4}}
    cfg = LlavaConfig(
        vision_config=CLIPVisionConfig(image_size=336, patch_size=14, num_hidden_layers=LAYERS,
                                       num_attention_heads=w["vision_heads"], projection_dim=w["vision_hidden"],
                                       **_vision(w)),
        text_config=LlamaConfig(**text), image_token_id=tok.convert_tokens_to_ids("<image>"),
        pad_token_id=tok.pad_token_id, vision_feature_layer=-2, vision_feature_select_strategy="default",
        projector_hidden_act="gelu", image_seq_length=576, multimodal_projector_bias=True, tie_word_embeddings=False)
    return LlavaForConditionalGeneration(cfg), proc


def _mrope_section(head_dim: int) -> list[int]:
    """The real [16, 24, 24] (of head_dim 128 / 2) scaled to a smaller head dim."""
    scale = head_dim // 2 / 64
    return [round(16 * scale), round(24 * scale), round(24 * scale)]


def _build_qwen(tok, w: dict):
    proc = Qwen25VLImageOnlyProcessor(image_processor=_image_processor("qwen"), tokenizer=tok,
                                      chat_template=CHAT_TEMPLATES["qwen"])
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
    return Qwen2_5_VLForConditionalGeneration(cfg), proc


def _build_idefics(tok, w: dict):
    proc = Idefics3Processor(image_processor=_image_processor("idefics"), tokenizer=tok,
                             chat_template=CHAT_TEMPLATES["idefics"], **REAL_PROCESSOR["idefics"]["processor"])
    text = _text_config(tok, "idefics", w) | {"rope_parameters": {"rope_type": "default", "rope_theta": 5e5}}
    cfg = Idefics3Config(
        vision_config=Idefics3VisionConfig(image_size=364, patch_size=14, num_hidden_layers=LAYERS,
                                           num_attention_heads=w["vision_heads"], hidden_act="gelu_pytorch_tanh",
                                           **_vision(w)),
        text_config=LlamaConfig(**text), image_token_id=tok.convert_tokens_to_ids("<image>"), scale_factor=2,
        pad_token_id=tok.pad_token_id, tie_word_embeddings=False)
    return Idefics3ForConditionalGeneration(cfg), proc


_BUILDERS = {"llava": _build_llava, "qwen": _build_qwen, "idefics": _build_idefics}


def build_smoke(family: str, out_dir: Path, *, width: str = "small", seed: int = 0) -> Path:
    """Build and save a random-weight `family` checkpoint with the real geometry, processor and chat template."""
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; expected one of: {', '.join(FAMILIES)}")
    if width not in WIDTHS:
        raise ValueError(f"unknown width {width!r}; expected one of: {', '.join(WIDTHS)}")
    w = WIDTHS[width]
    tok = build_tokenizer(family, _corpus(seed), w["vocab"])
    torch.manual_seed(seed)
    model, proc = _BUILDERS[family](tok, w)
    eos = [tok.convert_tokens_to_ids(t) for t in REAL_TOKENS[family]["generation_eos"]]
    model.generation_config = GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=eos,
                                               pad_token_id=tok.pad_token_id, do_sample=False)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    proc.save_pretrained(out_dir)
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
