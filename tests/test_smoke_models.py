"""Real-shape smoke checkpoints (transfer.models.smoke): real processors, image-token counts, chat formats; the
BLINK fixture with realistic JPEG/PNG images."""
from __future__ import annotations

import io
import json
import math

import polars as pl
import pytest
import torch
from PIL import Image

from tests.helpers import compose_spec
from transfer.data.blink import IMAGE_SLOTS, read_split
from transfer.encode import TOKEN_KEYS, chat_prompt, processor_images
from transfer.models.families import load_pretrained, load_processor
from transfer.models.reference import PREPROCESSOR_CONFIG, PROCESSOR_CONFIG, REAL_TOKENS, save_reference_processor
from transfer.models.smoke import build_smoke, main, write_blink_fixture
from transfer.tasks import TASK_NAMES, TASKS

FAMILIES = ["llava", "qwen", "idefics"]
QUESTION = "Which point is closer?\nSelect from the following choices.\n(A) A\n(B) B"
SIZES = [(1024, 768), (640, 480), (480, 640), (800, 600)]   # (width, height)
EXPECTED_PROMPT = {   # two images, then the text: each family's real chat format
    "llava": f"USER: <image>\n<image>\n{QUESTION} ASSISTANT:",
    "qwen": ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
             f"<|vision_start|><|image_pad|><|vision_end|><|vision_start|><|image_pad|><|vision_end|>{QUESTION}"
             "<|im_end|>\n<|im_start|>assistant\n"),
    "idefics": f"<|begin_of_text|>User:<image><image>{QUESTION}<end_of_utterance>\nAssistant:",
}


@pytest.fixture(scope="module", params=FAMILIES)
def smoke(request, tmp_path_factory):
    family = request.param
    return load_pretrained(family, build_smoke(family, tmp_path_factory.mktemp(family)))


def image(size: tuple[int, int]) -> Image.Image:
    return Image.radial_gradient("L").resize(size).convert("RGB")


def expected_image_tokens(family: str, width: int, height: int) -> int:
    """Each real checkpoint's image-token count for one image (formulas from the processors' documentation)."""
    if family == "llava":
        return (336 // 14) ** 2                                  # 576 whatever the size: resize + center crop
    if family == "qwen":                                         # smart_resize to multiples of 28, then 2x2 merge
        h, w = round(height / 28) * 28, round(width / 28) * 28
        assert 3136 <= h * w <= 12845056
        return (h // 28) * (w // 28)
    scale = 1456 / max(width, height)                            # longest edge to 4 x 364, 364-px tiles + global
    rows, cols = math.ceil(int(height * scale) / 364), math.ceil(int(width * scale) / 364)
    return (rows * cols + 1) * 169


def encode(smoke, images: list[Image.Image]) -> dict:
    text = chat_prompt(smoke.processor, len(images), QUESTION)
    return smoke.processor(images=processor_images(smoke.family, images), text=[text], return_tensors="pt")


def vision_tokens(model, enc: dict) -> int:
    """Rows of image features the vision tower + projector produce for `enc`'s images."""
    with torch.no_grad():
        features = model.get_image_features(**{k: v for k, v in enc.items() if k not in TOKEN_KEYS}).pooler_output
    return sum(f.shape[0] for f in features)


def test_real_model_class_and_processor_settings(smoke, tmp_path):
    expected_class = {"llava": "LlavaForConditionalGeneration", "qwen": "Qwen2_5_VLForConditionalGeneration",
                      "idefics": "Idefics3ForConditionalGeneration"}[smoke.family]
    assert type(smoke.model).__name__ == expected_class
    settings = smoke.processor.image_processor.to_dict()
    stored = dict(PREPROCESSOR_CONFIG[smoke.family])
    if smoke.family == "qwen":   # the stored area bounds become the processor's size
        stored["size"] = {"shortest_edge": stored.pop("min_pixels"), "longest_edge": stored.pop("max_pixels")}
    for key, value in stored.items():
        if key not in ("image_processor_type", "processor_class"):
            got = settings[key]
            assert (list(got) if isinstance(got, tuple) else got) == value, key
    for key, value in (PROCESSOR_CONFIG[smoke.family] or {}).items():
        if key != "processor_class":
            assert getattr(smoke.processor, key) == value, key
    # the checkpoint stores its processor as the real one does: the legacy files, no nested image processor
    checkpoint = build_smoke(smoke.family, tmp_path, width="tiny")
    assert json.loads((checkpoint / "preprocessor_config.json").read_text()) == PREPROCESSOR_CONFIG[smoke.family]
    processor_file = checkpoint / "processor_config.json"
    assert (json.loads(processor_file.read_text()) if processor_file.exists() else None) == PROCESSOR_CONFIG[
        smoke.family]


def test_image_tokens_match_vision_tower_and_real_formula(smoke):
    enc = encode(smoke, [image((1024, 768))])
    in_prompt = int((enc["input_ids"] == smoke.model.config.image_token_id).sum())
    assert in_prompt == vision_tokens(smoke.model, enc) == expected_image_tokens(smoke.family, 1024, 768)


@pytest.mark.parametrize("n_images", [1, 4])
def test_forward_at_real_image_sizes(smoke, n_images):
    images = [image(size) for size in SIZES[:n_images]]
    enc = encode(smoke, images)
    in_prompt = int((enc["input_ids"] == smoke.model.config.image_token_id).sum())
    assert in_prompt == sum(expected_image_tokens(smoke.family, *im.size) for im in images)
    with torch.no_grad():
        logits = smoke.model(**enc).logits
    assert logits.shape == (1, enc["input_ids"].shape[1], smoke.model.config.text_config.vocab_size)
    assert torch.isfinite(logits).all()


def budget_tokens(width: int, height: int, max_pixels: int) -> int:
    """Qwen2.5-VL's image tokens for an image above `max_pixels`: both sides scaled by sqrt(area / max_pixels)
    and floored to multiples of 28, one token per merged 28 x 28 patch."""
    beta = math.sqrt(width * height / max_pixels)
    return math.floor(height / beta / 28) * math.floor(width / beta / 28)


@pytest.mark.parametrize(("model", "overrides"), [
    ("qwen2.5vl-7b", []), ("idefics3-8b", ["model.pixels.longest_edge=728"]),
    ("idefics3-8b", ["model.pixels.image_splitting=false"])])
def test_the_pixel_budget_binds_over_the_checkpoints_stored_settings(tmp_path, model, overrides):
    """The budget of the real config wins over what the checkpoint's preprocessor_config.json stores (Qwen2.5-VL:
    min_pixels 3136 / max_pixels 12845056; Idefics3: longest edge 1456, splitting), for the processor the cells
    load and the reference processor the planner counts with."""
    spec = compose_spec(f"model={model}", *overrides).model
    pixels = spec.pixels.processor_kwargs()
    width, height = 1500, 1000
    if spec.family == "qwen":
        expected = budget_tokens(width, height, spec.pixels.max_pixels)
    elif spec.pixels.image_splitting:   # 364-px tiles of the image resized to the longest edge, + the global view
        edge = spec.pixels.longest_edge
        expected = (math.ceil(edge / 364) * math.ceil(int(height * edge / width) / 364) + 1) * 169
    else:                               # one view
        expected = 169
    stored = expected_image_tokens(spec.family, width, height)
    assert expected < stored
    checkpoint = build_smoke(spec.family, tmp_path / "smoke", width="tiny")
    for path in (checkpoint, save_reference_processor(spec.family, tmp_path / "reference")):
        unbounded, bounded = load_processor(spec.family, path), load_processor(spec.family, path, pixels)
        for processor, tokens in ((unbounded, stored), (bounded, expected)):
            text = chat_prompt(processor, 1, QUESTION)
            ids = processor(images=processor_images(spec.family, [image((width, height))]), text=[text])["input_ids"]
            assert sum(t == processor.image_token_id for t in ids[0]) == tokens, (path.name, pixels)
        assert "min_pixels" not in bounded.tokenizer.init_kwargs   # the budget goes to the image processor only


def test_chat_template_renders_the_real_format(smoke):
    assert chat_prompt(smoke.processor, 2, QUESTION) == EXPECTED_PROMPT[smoke.family]


def test_answer_letters_are_single_tokens_and_special_tokens_keep_the_real_order(smoke):
    tok = smoke.tokenizer
    for letter in ["A", "B", "C", "D", " A", " B", " C", " D"]:
        assert len(tok(letter, add_special_tokens=False)["input_ids"]) == 1, letter
    spec = REAL_TOKENS[smoke.family]
    after = [tok.convert_tokens_to_ids(t) for t in spec["after"]]
    assert after == list(range(len(tok) - len(after), len(tok)))
    assert [tok.convert_tokens_to_ids(t) for t in spec["before"]] == list(range(len(spec["before"])))
    first = tok("x")["input_ids"][0]
    assert (first == tok.bos_token_id) == spec["add_bos"]


def test_prompt_starts_as_the_real_tokenizer_makes_it(smoke):
    """Llava: one <s>. Qwen: no BOS. Idefics3: the template's <|begin_of_text|> plus the tokenizer's own (twice)."""
    ids = encode(smoke, [image((640, 480))])["input_ids"][0].tolist()
    bos = smoke.tokenizer.bos_token_id
    leading = next(i for i, t in enumerate(ids) if t != bos) if bos is not None else 0
    assert leading == {"llava": 1, "qwen": 0, "idefics": 2}[smoke.family]


def test_qwen_mrope_positions_need_mm_token_type_ids(tmp_path):
    """Without mm_token_type_ids Qwen2.5-VL silently falls back to 1-D positions for the image tokens."""
    smoke = load_pretrained("qwen", build_smoke("qwen", tmp_path, width="tiny"))
    enc = encode(smoke, [image((640, 480))])
    assert set(enc["mm_token_type_ids"].unique().tolist()) == {0, 1}
    with torch.no_grad():
        with_types = smoke.model(**enc).logits[0, -1]
        without = smoke.model(**{k: v for k, v in enc.items() if k != "mm_token_type_ids"}).logits[0, -1]
    assert not torch.allclose(with_types, without)


def test_cli_builds_a_loadable_checkpoint(tmp_path):
    main(["--family", "qwen", "--out", str(tmp_path / "qwen"), "--width", "tiny"])
    loaded = load_pretrained("qwen", tmp_path / "qwen")
    assert loaded.model.config.vision_config.patch_size == 14


def test_blink_fixture_reads_back_with_realistic_images(tmp_path):
    root = write_blink_fixture(tmp_path, per_task=2, seed=0)
    sizes = set()
    for task in TASK_NAMES:
        questions = read_split(root, task, "val")
        assert len(questions) == 2
        for q in questions:
            assert len(q.images) == TASKS[task].n_images and len(q.choices) == TASKS[task].n_choices
            assert all(640 <= max(im.size) <= 1500 for im in q.images)
            sizes.update(im.size for im in q.images)
    assert len({round(w / h, 2) for w, h in sizes}) >= 3 and any(h > w for w, h in sizes)
    formats = set()
    for task in TASK_NAMES:
        frame = pl.read_parquet(root / task / "val-00000-of-00001.parquet")
        for slot in IMAGE_SLOTS:
            formats.update(Image.open(io.BytesIO(cell["bytes"])).format for cell in frame[slot] if cell is not None)
    assert formats == {"JPEG", "PNG"}
