"""The log-likelihood scorer: agrees with teacher forcing, and follows the model's preference."""
import copy
import dataclasses
import random

import pytest
import torch
from peft import PeftModel
from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled, unset_hf_deepspeed_config

from tests.helpers import FAMILIES, PREFIX, colour_questions
from transfer.encode import encode_questions
from transfer.evaluate import TaskResult, _score_full, calibrate, for_scoring, score_examples, split_head
from transfer.models.families import load_pretrained
from transfer.spec import DeepSpeedSpec, LoraSpec, TrainSpec
from transfer.train import apply_lora, finetune

TRAIN = TrainSpec(steps=12, batch_size=8, grad_accum=1, global_batch=None, lr=1e-2, weight_decay=0.0,
                  schedule="constant",
                  warmup_steps=0, max_grad_norm=1.0, save_steps=0, bf16=False, activation_checkpointing=False,
                  deepspeed=None)
LORA = LoraSpec(r=4, alpha=8.0, dropout=0.0, trainable_modules=[],
                target=r".*(language_model|text_model)\.layers\.\d+\.self_attn\.(q_proj|v_proj)")


def test_split_head():
    assert split_head([[5, 1], [5, 2]]) == ([5], [1, 2])
    assert split_head([[1], [2], [3]]) == ([], [1, 2, 3])
    assert split_head([[5, 1], [6, 2]]) is None          # heads differ: needs the full path
    assert split_head([[1, 2], [1, 2, 3]]) is None       # lengths differ


@pytest.mark.parametrize("family", FAMILIES)
def test_single_pass_matches_teacher_forcing(family, tiny_checkpoints):
    loaded = load_pretrained(family, tiny_checkpoints[family])
    enc = encode_questions(loaded.processor, family, PREFIX[family], colour_questions(6, n_images=2, n_choices=4))
    fast = score_examples(loaded.model, enc, family, loaded.tokenizer.pad_token_id, batch_size=4)
    full = _score_full(loaded.model, enc, family, loaded.tokenizer.pad_token_id)
    for f, s in zip(fast, full):   # equal up to the shared head's log-probability, the same for every option
        offsets = [a - b for a, b in zip(s, f)]
        assert max(offsets) - min(offsets) < 1e-4


def _always(questions, letter_index):
    """The same questions with the gold option moved to `letter_index`."""
    out = []
    for q in questions:
        choices = list(q.choices)
        choices[q.answer], choices[letter_index] = choices[letter_index], choices[q.answer]
        out.append(dataclasses.replace(q, choices=choices, answer=letter_index))
    return out


@pytest.mark.parametrize("family", FAMILIES)
def test_scorer_prefers_the_option_the_model_prefers(family, tiny_checkpoints, tmp_path):
    loaded = load_pretrained(family, tiny_checkpoints[family])
    enc = lambda qs: encode_questions(loaded.processor, family, PREFIX[family], qs)  # noqa: E731
    questions = colour_questions(24, n_choices=4)
    model, _ = finetune(loaded.model, enc(_always(questions, 1)), family=family, tokenizer=loaded.tokenizer,
                        train=TRAIN, out_dir=tmp_path, seed=0, lora=None, desc="fixture")
    held_out = colour_questions(16, n_choices=4, seed=7)
    pad = loaded.tokenizer.pad_token_id
    gold_b = score_examples(model, enc(_always(held_out, 1)), family, pad, 8)
    gold_c = score_examples(model, enc(_always(held_out, 2)), family, pad, 8)
    assert all(max(range(4), key=ll.__getitem__) == 1 for ll in gold_b)   # the model says B: B wins
    assert all(max(range(4), key=ll.__getitem__) == 1 for ll in gold_c)   # ... even when the gold is C


def test_batch_calibration_removes_a_letter_prior_and_keeps_the_signal():
    """A model that adds a large bonus to "B" answers B everywhere; calibrated, its per-question signal decides."""
    rng = random.Random(0)
    gold = [i % 3 for i in range(300)]
    signal = [[1.0 if j == g else 0.0 for j in range(3)] for g in gold]
    noisy = [[s + rng.gauss(0, 0.3) + (4.0 if j == 1 else 0.0) for j, s in enumerate(row)] for row in signal]
    raw = TaskResult("T", [str(i) for i in range(300)], gold, noisy, 0.0, "none")
    calibrated = dataclasses.replace(raw, calibration="batch")
    assert set(raw.predicted) == {1} and sum(raw.correct) == 100
    assert sum(calibrated.correct) / 300 > 0.9
    assert calibrate(noisy, "none") is noisy


def test_unknown_calibration_is_refused_in_one_line():
    with pytest.raises(ValueError, match="unknown eval.calibration 'platt'; expected one of: none, batch"):
        calibrate([[0.0, 1.0]], "platt")


def _largest_gap(a: list[list[float]], b: list[list[float]]) -> float:
    return max(abs(x - y) for row_a, row_b in zip(a, b) for x, y in zip(row_a, row_b))


@pytest.mark.filterwarnings("error::FutureWarning", "error::DeprecationWarning")   # no deprecated calls of ours
@pytest.mark.parametrize("family", FAMILIES)
def test_merged_adapter_scores_like_the_adapter(family, tiny_checkpoints, tmp_path):
    loaded = load_pretrained(family, tiny_checkpoints[family])
    enc = encode_questions(loaded.processor, family, PREFIX[family], colour_questions(24, n_choices=4))
    adapted, _ = finetune(loaded.model, enc, family=family, tokenizer=loaded.tokenizer, train=TRAIN, out_dir=tmp_path,
                          seed=0, lora=LORA, desc="fixture")
    pad = loaded.tokenizer.pad_token_id
    unmerged = score_examples(adapted, enc, family, pad, 8)
    with adapted.disable_adapter():
        base = score_examples(adapted, enc, family, pad, 8)
    assert _largest_gap(unmerged, base) > 1e-2   # the adapter matters, so agreeing with it means something
    merged_model = for_scoring(copy.deepcopy(adapted), merge_lora=True)
    assert not isinstance(merged_model, PeftModel)
    assert _largest_gap(score_examples(merged_model, enc, family, pad, 8), unmerged) < 1e-4
    assert for_scoring(adapted, merge_lora=False) is adapted


def test_bf16_and_zero3_weights_are_scored_unmerged(tiny_checkpoints, tmp_path):
    family = "llava"
    loaded = load_pretrained(family, tiny_checkpoints[family])
    enc = encode_questions(loaded.processor, family, PREFIX[family], colour_questions(8))
    zero3 = dataclasses.replace(TRAIN, steps=2, batch_size=4,
                                deepspeed=DeepSpeedSpec(config="zero.json", stage=3, master_port=None))
    try:
        sharded, _ = finetune(loaded.model, enc, family=family, tokenizer=loaded.tokenizer, train=zero3,
                              out_dir=tmp_path, seed=0, lora=LORA, desc="zero3")
        assert all(hasattr(p, "ds_id") for p in sharded.parameters())   # really partitioned by ZeRO-3
        assert for_scoring(sharded, merge_lora=True) is sharded
        assert len(score_examples(sharded, enc, family, loaded.tokenizer.pad_token_id, 4)) == len(enc)
        # the next cell of a reused worker loads its model whole, although ZeRO-3 left its global flag set
        assert is_deepspeed_zero3_enabled()
        again = load_pretrained(family, tiny_checkpoints[family]).model
        assert not any(hasattr(p, "ds_id") for p in again.parameters())
    finally:
        unset_hf_deepspeed_config()   # whatever failed above, later tests in this process load whole
    bf16 = apply_lora(again, LORA).to(torch.bfloat16)
    assert for_scoring(bf16, merge_lora=True) is bf16

