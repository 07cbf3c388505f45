"""Batches of encoded examples (transfer.encode) for training and scoring, per family."""
from __future__ import annotations

import torch


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
