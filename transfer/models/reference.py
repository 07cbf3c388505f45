"""Each family's real processor files, and a reference processor made from them: the real image-processor and
processor settings, chat template and special tokens (in the real id order), with a small byte-level BPE trained
locally in place of the real vocabulary. Image tokens follow the real geometry exactly; text tokens are an estimate.

The files are written as the real checkpoints store them (`preprocessor_config.json`, `processor_config.json`
where the checkpoint has one), so a budget in `model.pixels` meets the same stored keys as on the real checkpoint
(Qwen2.5-VL's `min_pixels` / `max_pixels` among them).

Where each real value comes from (hub files read as public copies; transformers = huggingface/transformers):

llava-hf/llava-1.5-7b-hf (copies of the hub repo in tung2kg1/AI-Stock-Chart-Analysis, llava-1.5-7b-hf/):
  preprocessor_config.json: CLIPImageProcessor, size shortest_edge 336, crop_size 336x336, center crop,
    do_convert_rgb, resample 3 (bicubic), rescale 1/255, OpenAI CLIP mean/std.
  processor_config.json: patch_size 14, num_additional_image_tokens 1, vision_feature_select_strategy default,
    image_token <image>.
  chat_template.jinja (also openvinotoolkit/openvino.genai src/cpp/src/tokenizer/chat_template_fallback_map.hpp).
  tokenizer_config.json / special_tokens_map.json / added_tokens.json: <unk> 0, <s> 1, </s> 2 before the text
    vocabulary, <image> 32000 and <pad> 32001 after it; add_bos_token true; padding_side left.
Qwen/Qwen2.5-VL-7B-Instruct:
  preprocessor_config.json (hub copies: unsloth/Qwen2.5-VL-7B-Instruct-bnb-4bit, AngelSlim/Qwen2.5-VL-72B-Instruct-
    FP8-Dynamic): Qwen2VLImageProcessor, min_pixels 3136, max_pixels 12845056, patch_size 14, merge_size 2,
    temporal_patch_size 2, OpenAI CLIP mean/std (resample, rescale and the do_* flags: the class defaults);
    no processor_config.json.
  chat_template.json (transformers tests/models/qwen2_5_vl/test_processor_qwen2_5_vl.py prepare_processor_dict;
    the same string in optimum-intel-internal-testing/tiny-random-qwen2.5-vl chat_template.json): default system
    prompt "You are a helpful assistant.", <|vision_start|><|image_pad|><|vision_end|> per image.
  tokenizer: <|endoftext|> 151643 (pad), <|im_start|> 151644, <|im_end|> 151645 (eos), object_ref/box/quad
    tokens, <|vision_start|> .. <|video_pad|> 151652-151656, all after the text vocabulary; no BOS.
HuggingFaceM4/Idefics3-8B-Llama3 (hub blob pages of the repo):
  preprocessor_config.json: Idefics3ImageProcessor, do_image_splitting true, size longest_edge 1456 (4 x 364),
    resample 1 (Lanczos), do_pad, SigLIP mean/std 0.5; max_image_size longest_edge 364 (in the first revision
    6a10ffe, the Idefics3ImageProcessor default since).
  processor_config.json / chat_template.json: the chat template below; image_seq_len 169 = (364/14)^2 / 2^2
    (transformers processing_idefics3.py default, tests/models/idefics3/test_processing_idefics3.py).
  tokenizer (hf-internal-testing/tiny-random-Idefics3ForConditionalGeneration special_tokens_map.json, made from
    the real one): bos <|begin_of_text|>, eos <|end_of_text|>, pad <|reserved_special_token_0|>, added
    <fake_token_around_image> <image> <end_of_utterance>. <global-img> and <row_i_col_j> are plain text in the
    real vocabulary (the transformers test tokenizes them to several ids), so they are not special tokens here.
"""
from __future__ import annotations

import json
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

CHECKPOINTS = {"llava": "llava-hf/llava-1.5-7b-hf", "qwen": "Qwen/Qwen2.5-VL-7B-Instruct",
               "idefics": "HuggingFaceM4/Idefics3-8B-Llama3"}
CLIP_MEAN, CLIP_STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]

# Each real checkpoint's preprocessor_config.json, key for key.
PREPROCESSOR_CONFIG: dict[str, dict] = {
    "llava": {"crop_size": {"height": 336, "width": 336}, "do_center_crop": True, "do_convert_rgb": True,
              "do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": CLIP_MEAN,
              "image_processor_type": "CLIPImageProcessor", "image_std": CLIP_STD, "processor_class": "LlavaProcessor",
              "resample": 3, "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 336}},
    "qwen": {"min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
             "image_mean": CLIP_MEAN, "image_std": CLIP_STD, "image_processor_type": "Qwen2VLImageProcessor",
             "processor_class": "Qwen2_5_VLProcessor"},
    "idefics": {"do_convert_rgb": True, "do_image_splitting": True, "do_normalize": True, "do_pad": True,
                "do_rescale": True, "do_resize": True, "image_mean": [0.5] * 3,
                "image_processor_type": "Idefics3ImageProcessor", "image_std": [0.5] * 3,
                "max_image_size": {"longest_edge": 364}, "processor_class": "Idefics3Processor", "resample": 1,
                "rescale_factor": 0.00392156862745098, "size": {"longest_edge": 1456}},
}
# Each real checkpoint's processor_config.json (Qwen2.5-VL's repository has none).
PROCESSOR_CONFIG: dict[str, dict | None] = {
    "llava": {"image_token": "<image>", "num_additional_image_tokens": 1, "patch_size": 14,
              "processor_class": "LlavaProcessor", "vision_feature_select_strategy": "default"},
    "qwen": None,
    "idefics": {"image_seq_len": 169, "processor_class": "Idefics3Processor"},
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

LETTERS = ["A", "B", "C", "D", " A", " B", " C", " D"]
VOCAB_SIZE = 1000
# The text the local tokenizer is trained on: the chat scaffolding, BLINK's prompt frame and its question words.
CORPUS = [
    "USER: ASSISTANT: User: Assistant: system user assistant You are a helpful assistant.",
    "<global-img> <row_1_col_1> " * 4,
    "Select from the following choices.\n(A) the first image\n(B) the second image\n(C) the third image\n"
    "(D) the fourth image",
    "Which point is closer to the camera? Which point has darker surface color, or is the color about the same?",
    "Use the first image as the reference image. Which one of the second or the third image shares the same "
    "style as the reference image? How many objects are in the image? Which image is most likely to be a real "
    "photograph? Which point on the second image corresponds to the reference point in the first image? Which "
    "box more accurately localizes and encloses the object? Is the camera moving left or right? Given the "
    "first image with the lower right corner missing, can you tell which one is the missing part?",
    "A reference point REF is circled on the first image; four points are circled on the second image: A (red), "
    "B (blue), C (green), D (yellow). Point A Point B Point C Point D Box A Box B yes no left right",
] + [" A B C D (A) (B) (C) (D) A\nB\nC\nD"] * 50


def build_tokenizer(family: str) -> PreTrainedTokenizerFast:
    """A byte-level BPE with the real special tokens in the real order (and BOS prepending where real)."""
    spec = REAL_TOKENS[family]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=spec["before"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
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
        raise ValueError(f"answer letters {split} are not single tokens; add them to the corpus")
    return fast


def save_processor_files(family: str, tokenizer: PreTrainedTokenizerFast, out_dir: Path) -> Path:
    """Write `family`'s processor as its real checkpoint stores it: tokenizer, chat template,
    preprocessor_config.json and (where the real one has it) processor_config.json."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "chat_template.jinja").write_text(CHAT_TEMPLATES[family])
    (out_dir / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR_CONFIG[family], indent=2) + "\n")
    if PROCESSOR_CONFIG[family] is not None:
        (out_dir / "processor_config.json").write_text(json.dumps(PROCESSOR_CONFIG[family], indent=2) + "\n")
    return out_dir


def save_reference_processor(family: str, out_dir: Path) -> Path:
    """The family's reference processor, saved to `out_dir` (load it with `families.load_processor`)."""
    if family not in REAL_TOKENS:
        raise ValueError(f"unknown model family {family!r}; expected one of: {', '.join(REAL_TOKENS)}")
    return save_processor_files(family, build_tokenizer(family), out_dir)
