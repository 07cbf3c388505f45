"""Every family's real inputs reach the model: on real-class smoke checkpoints with the real processor settings,
the project's batched logits at the scored positions equal the unbatched forward of the processor's own full
output, with right and left padding and 1-4 images of realistic sizes mixed in a batch; pixels made per batch
equal cached ones; the token budget changes batches, not scores; generation yields an answer per question."""
from __future__ import annotations

import pytest
import torch

from tests.helpers import compose_spec
from transfer.batch import last_positions, scoring_batch
from transfer.data.blink import read_split
from transfer.encode import ImageSource, chat_prompt, encode_questions, processor_images
from transfer.evaluate import batches, generate_answers, score_examples, split_head
from transfer.models.families import load_pretrained
from transfer.models.smoke import build_smoke, write_blink_fixture

FAMILIES = {"llava": "llava-1.5-7b", "qwen": "qwen2.5vl-7b", "idefics": "idefics3-8b"}
TASKS = ("Counting", "Visual_Correspondence", "Art_Style", "Forensic_Detection")   # 1, 2, 3 and 4 images


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory):
    return write_blink_fixture(tmp_path_factory.mktemp("BLINK"), per_task=1)


@pytest.fixture(scope="module", params=list(FAMILIES))
def loaded(request, tmp_path_factory):
    family = request.param
    model = compose_spec(f"model={FAMILIES[family]}").model   # the real checkpoint's config: its pixel budget
    checkpoint = build_smoke(family, tmp_path_factory.mktemp(family))
    pixels = model.pixels.processor_kwargs() if model.pixels else None
    out = load_pretrained(family, checkpoint, "float32", pixels)
    out.model.eval()
    return out, model.answer_prefix


def _questions(root):
    return [q for task in TASKS for q in read_split(root, task, "val")]


def _reference_logits(loaded, question) -> torch.Tensor:
    """The next-token logits after the prompt, from the processor's full output of one question alone."""
    text = chat_prompt(loaded.processor, len(question.image_data), question.prompt)
    enc = loaded.processor(images=processor_images(loaded.family, question.images), text=[text], return_tensors="pt")
    with torch.inference_mode():
        return loaded.model(**enc).logits[0, -1]


def test_every_image_reaches_the_model(loaded, fixture_root):
    loaded, prefix = loaded
    questions = _questions(fixture_root)
    examples = encode_questions(loaded.processor, loaded.family, prefix, questions)
    config = loaded.model.config
    for q, ex in zip(questions, examples):
        image_tokens = int((ex["prompt_ids"] == config.image_token_id).sum())
        if loaded.family == "llava":
            expected = len(q.image_data) * config.image_seq_length
        elif loaded.family == "qwen":
            assert ex["images"]["image_grid_thw"].shape[0] == len(q.image_data)
            merge = config.vision_config.spatial_merge_size
            expected = int(ex["images"]["image_grid_thw"].prod(-1).sum()) // merge ** 2
            assert ex["token_types"].sum() == image_tokens   # every image token is typed as image
        else:
            tiles = ex["images"]["pixel_values"].shape[1]
            assert tiles >= len(q.image_data)
            expected = tiles * loaded.processor.image_seq_len
        assert image_tokens == expected > 0, (q.idx, image_tokens, expected)


@pytest.mark.parametrize("side", ["right", "left"])
def test_batched_logits_equal_the_processors_unbatched_forward(loaded, fixture_root, side):
    loaded, prefix = loaded
    questions = _questions(fixture_root)
    examples = encode_questions(loaded.processor, loaded.family, prefix, questions)
    heads = [split_head(ex["options"])[0] for ex in examples]
    assert not any(heads)   # the letter is the first answer token: the scored position ends the prompt
    batch = scoring_batch(examples, loaded.family, loaded.tokenizer.pad_token_id, heads, side=side)
    with torch.inference_mode():
        logits = loaded.model(**batch).logits
    rows = logits[torch.arange(len(examples)), last_positions(batch["attention_mask"])]
    for q, row in zip(questions, rows):
        reference = _reference_logits(loaded, q)
        assert torch.allclose(row, reference, atol=2e-4, rtol=1e-4), (q.idx, (row - reference).abs().max())


def test_pixels_made_per_batch_and_token_budgets_give_the_cached_scores(loaded, fixture_root):
    loaded, prefix = loaded
    questions = _questions(fixture_root)
    cached = encode_questions(loaded.processor, loaded.family, prefix, questions)
    tokens_only = encode_questions(loaded.processor, loaded.family, prefix, questions, pixels=False)
    assert all("images" not in ex for ex in tokens_only)
    source = ImageSource(loaded.processor, loaded.family, lambda: questions)
    pad = loaded.tokenizer.pad_token_id
    reference = score_examples(loaded.model, cached, loaded.family, pad, batch_size=4)
    per_batch = score_examples(loaded.model, tokens_only, loaded.family, pad, batch_size=4, images=source)
    longest = max(len(ex["prompt_ids"]) + 1 for ex in cached)
    budget = score_examples(loaded.model, cached, loaded.family, pad, batch_size=4, batch_tokens=longest)
    packed = batches(cached, 4, longest)
    assert 1 < len(packed) < len(cached) or len(packed) == len(cached)   # the budget splits the batch of 4
    assert sorted(i for b in packed for i in b) == list(range(len(cached)))
    for b in packed[:-1]:   # each batch holds what fits the budget (at least one question)
        assert len(b) == 1 or len(b) * max(len(cached[i]["prompt_ids"]) + 1 for i in b) <= longest
    for a, b, c in zip(reference, per_batch, budget):
        assert a == pytest.approx(b, abs=1e-4) and a == pytest.approx(c, abs=1e-4)


def test_generation_answers_every_question(loaded, fixture_root):
    loaded, prefix = loaded
    questions = _questions(fixture_root)
    examples = encode_questions(loaded.processor, loaded.family, prefix, questions, pixels=False)
    source = ImageSource(loaded.processor, loaded.family, lambda: questions)
    texts = generate_answers(loaded.model, examples, loaded.family, loaded.tokenizer, batch_size=4,
                             max_new_tokens=3, images=source)
    assert len(texts) == len(questions) and all(isinstance(t, str) for t in texts)
