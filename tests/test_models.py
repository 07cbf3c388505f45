"""Model families: from_pretrained round trip, LoRA on the language model only, batching per family."""
import pytest
import torch

from tests.helpers import FAMILIES, PREFIX, colour_questions
from transfer.batch import training_batch
from transfer.encode import encode_questions
from transfer.models.families import load_pretrained
from transfer.spec import LoraSpec
from transfer.train import apply_lora

LM_TARGET = (r".*(language_model|text_model)\.layers\.\d+\."
             r"(self_attn\.(q_proj|k_proj|v_proj|o_proj)|mlp\.(gate_proj|up_proj|down_proj))")
PROJECTOR = {"llava": "multi_modal_projector", "qwen": "merger", "idefics": "connector"}


@pytest.mark.parametrize("family", FAMILIES)
def test_round_trip_from_pretrained_is_exact(family, tiny_checkpoints):
    a, b = load_pretrained(family, tiny_checkpoints[family]), load_pretrained(family, tiny_checkpoints[family])
    enc = encode_questions(a.processor, family, PREFIX[family], colour_questions(3, n_images=2))
    batch = training_batch(enc, family, a.tokenizer.pad_token_id, a.tokenizer.eos_token_id)
    with torch.no_grad():
        diff = (a.model.eval()(**batch).logits - b.model.eval()(**batch).logits).abs().max().item()
    assert diff == 0.0


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_touches_only_the_language_model(family, tiny_checkpoints):
    model = apply_lora(load_pretrained(family, tiny_checkpoints[family]).model,
                       LoraSpec(r=4, alpha=8.0, dropout=0.0, target=LM_TARGET, trainable_modules=[PROJECTOR[family]]))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    lora = [n for n in trainable if "lora_" in n]
    assert lora and all("language_model" in n or "text_model" in n for n in lora)
    assert not [n for n in trainable if ("vision" in n or "visual" in n) and "merger" not in n]
    assert any(PROJECTOR[family] in n for n in trainable)


def test_lora_regex_matching_nothing_is_a_clear_error(tiny_checkpoints):
    model = load_pretrained("llava", tiny_checkpoints["llava"]).model
    with pytest.raises(ValueError, match="matches no module"):
        apply_lora(model, LoraSpec(r=4, alpha=8.0, dropout=0.0, target=r".*nonexistent", trainable_modules=[]))


@pytest.mark.parametrize("family", FAMILIES)
def test_mixed_image_counts_batch_and_backprop(family, tiny_checkpoints):
    loaded = load_pretrained(family, tiny_checkpoints[family])
    questions = colour_questions(2, n_images=1) + colour_questions(2, n_images=3, seed=1)
    enc = encode_questions(loaded.processor, family, PREFIX[family], questions)
    batch = training_batch(enc, family, loaded.tokenizer.pad_token_id, loaded.tokenizer.eos_token_id)
    loss = loaded.model(**batch).loss
    loss.backward()
    assert torch.isfinite(loss)
    supervised = (batch["labels"] != -100).sum(1)
    assert supervised.tolist() == [len(e["options"][e["answer"]]) + 1 for e in enc]
