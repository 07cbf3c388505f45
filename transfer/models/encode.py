"""Pre-encoding questions once per processor, and batching the encoded examples for each family.

An encoded example holds the prompt's token ids (image tokens expanded by the family's processor), the
token ids of each option's answer continuation, the gold index and the family's image tensors (stored in
float16 to halve memory; batches are float32).
"""
from __future__ import annotations

import io
from pathlib import Path

import torch
from transformers.processing_utils import ProcessorMixin

from transfer import timing
from transfer.data.question import Question
from transfer.models.families import chat_prompt, processor_images
from transfer.atomic import write_bytes

TOKEN_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids")


def continuation_ids(tokenizer, prompt_text: str, continuation: str) -> list[int]:
    """Token ids that `continuation` adds after `prompt_text` when both are tokenized together."""
    head = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    full = tokenizer(prompt_text + continuation, add_special_tokens=False)["input_ids"]
    if full[: len(head)] != head:
        raise ValueError(f"tokenizer merges the prompt's end with the answer {continuation!r}; "
                         "set model.answer_prefix so that the answer starts a new token")
    return full[len(head):]


def _compact(key: str, value: torch.Tensor) -> torch.Tensor:
    if value.is_floating_point():
        return value.to(torch.float16)
    return value.bool() if key == "pixel_attention_mask" else value


def encode_question(processor: ProcessorMixin, family: str, answer_prefix: str, q: Question) -> dict:
    text = chat_prompt(processor, len(q.images), q.prompt)
    enc = processor(images=processor_images(family, q.images), text=[text], return_tensors="pt")
    images = {k: _compact(k, v) for k, v in enc.items() if k not in TOKEN_KEYS}
    options = [continuation_ids(processor.tokenizer, text, answer_prefix + letter) for letter in q.letters]
    return {"idx": q.idx, "task": q.task, "prompt_ids": enc["input_ids"][0], "options": options,
            "answer": q.answer, "images": images}


def encode_questions(processor, family: str, answer_prefix: str, questions: list[Question]) -> list[dict]:
    return [encode_question(processor, family, answer_prefix, q) for q in questions]


def _stack_images(examples: list[dict], family: str) -> dict[str, torch.Tensor]:
    out = {}
    for key in examples[0]["images"]:
        parts = [ex["images"][key] for ex in examples]
        if family == "idefics":   # (1, k, ...) per sample: pad the image axis to the batch's largest k
            k = max(p.shape[1] for p in parts)
            parts = [torch.cat([p, p.new_zeros((1, k - p.shape[1], *p.shape[2:]))], 1) for p in parts]
        cat = torch.cat(parts, 0)
        out[key] = cat.float() if cat.is_floating_point() else cat
    return out


def pad_batch(sequences: list[list[int] | torch.Tensor], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token sequences: (input_ids, attention_mask)."""
    length = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for i, s in enumerate(sequences):
        ids[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


def training_batch(examples: list[dict], family: str, pad_id: int, eos_id: int) -> dict[str, torch.Tensor]:
    """Prompt + gold answer + EOS; the loss is on the answer and EOS only."""
    seqs, labels = [], []
    for ex in examples:
        answer = list(ex["options"][ex["answer"]]) + [eos_id]
        seqs.append(torch.cat([ex["prompt_ids"], torch.tensor(answer)]))
        labels.append([-100] * len(ex["prompt_ids"]) + answer)
    ids, mask = pad_batch(seqs, pad_id)
    lab, _ = pad_batch(labels, -100)
    return {"input_ids": ids, "attention_mask": mask, "labels": lab, **_stack_images(examples, family)}


def scoring_batch(examples: list[dict], family: str, pad_id: int, heads: list[list[int]]) -> dict[str, torch.Tensor]:
    """Prompt + the options' shared head tokens: the next token decides between the options."""
    seqs = [torch.cat([ex["prompt_ids"], torch.tensor(h, dtype=torch.long)]) for ex, h in zip(examples, heads)]
    ids, mask = pad_batch(seqs, pad_id)
    return {"input_ids": ids, "attention_mask": mask, **_stack_images(examples, family)}


def option_batch(examples: list[dict], family: str, pad_id: int) -> tuple[dict, list[tuple[int, int, int]]]:
    """One sequence per (question, option): prompt + the whole option continuation (the general path).

    Returns the batch and, per sequence, (question index, option index, continuation length).
    """
    seqs, owners, flat = [], [], []
    for qi, ex in enumerate(examples):
        for oi, opt in enumerate(ex["options"]):
            seqs.append(torch.cat([ex["prompt_ids"], torch.tensor(opt, dtype=torch.long)]))
            owners.append((qi, oi, len(opt)))
            flat.append(ex)
    ids, mask = pad_batch(seqs, pad_id)
    return {"input_ids": ids, "attention_mask": mask, **_stack_images(flat, family)}, owners


class EncodedCache:
    """Encoded questions per (task, role), kept in memory and on disk under `root` (keyed by processor)."""

    def __init__(self, root: Path, processor, family: str, answer_prefix: str):
        self.root, self.processor, self.family, self.answer_prefix = root, processor, family, answer_prefix
        self._memory: dict[str, list[dict]] = {}

    def get(self, key: str, load_questions, remember: bool = True) -> list[dict]:
        """Encoded questions for `key`; `load_questions()` supplies them on a miss. `remember` keeps them in memory."""
        if key in self._memory:
            return self._memory[key]
        path = self.root / f"{key}.pt"
        if path.exists():
            with timing.timed("io"):
                examples = torch.load(path, weights_only=False)
        else:
            with timing.timed("preprocessing"):
                examples = encode_questions(self.processor, self.family, self.answer_prefix, load_questions())
            with timing.timed("io"):
                buffer = io.BytesIO()
                torch.save(examples, buffer)
                write_bytes(path, buffer.getvalue())
        if remember:
            self._memory[key] = examples
        return examples
