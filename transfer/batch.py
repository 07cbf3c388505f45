"""Batches of encoded examples (transfer.encode) for training, scoring and generation, per family.

A batch carries everything the family's model reads: token ids and attention mask, the per-token modality types
(`mm_token_type_ids`: Qwen2.5-VL builds its 3-D image positions from them), and the image tensors (pixel values,
Qwen's image grids, Idefics3's pixel masks). Image tensors come from the examples (stored when they were encoded)
or from an `images` list made for this batch (transfer.encode.ImageSource).
"""
from __future__ import annotations

from typing import Literal

import torch

Side = Literal["right", "left"]


def _stack_images(examples: list[dict], family: str, images: list[dict] | None = None) -> dict[str, torch.Tensor]:
    parts_of = images if images is not None else [ex["images"] for ex in examples]
    out = {}
    for key in parts_of[0]:
        parts = [p[key] for p in parts_of]
        if family == "idefics":   # (1, k, ...) per sample: pad the image axis to the batch's largest k
            k = max(p.shape[1] for p in parts)
            parts = [torch.cat([p, p.new_zeros((1, k - p.shape[1], *p.shape[2:]))], 1) for p in parts]
        cat = torch.cat(parts, 0)
        out[key] = cat.float() if cat.is_floating_point() else cat
    return out


def pad_batch(sequences: list[list[int] | torch.Tensor], pad_id: int, side: Side = "right"
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad token sequences on `side`: (input_ids, attention_mask)."""
    length = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for i, s in enumerate(sequences):
        span = slice(0, len(s)) if side == "right" else slice(length - len(s), length)
        ids[i, span] = torch.as_tensor(s, dtype=torch.long)
        mask[i, span] = 1
    return ids, mask


def _token_types(examples: list[dict], extra: list[int], pad_side: Side) -> dict[str, torch.Tensor]:
    """mm_token_type_ids for the batch (the prompt's types, 0 for appended text and padding), when encoded."""
    if "token_types" not in examples[0]:
        return {}
    seqs = [torch.cat([ex["token_types"], torch.zeros(n, dtype=ex["token_types"].dtype)])
            for ex, n in zip(examples, extra)]
    types, _ = pad_batch(seqs, 0, pad_side)
    return {"mm_token_type_ids": types}


def _batch(examples: list[dict], tails: list[list[int]], family: str, pad_id: int, images: list[dict] | None,
           side: Side = "right", positions: bool = False) -> dict[str, torch.Tensor]:
    """Each example's prompt followed by its tail tokens, padded, with its token types and images; `positions`
    adds position ids counted from each row's first real token (what a left-padded forward needs, except for
    Qwen2.5-VL, which builds its positions from the attention mask itself)."""
    seqs = [torch.cat([ex["prompt_ids"], torch.tensor(t, dtype=torch.long)]) for ex, t in zip(examples, tails)]
    ids, mask = pad_batch(seqs, pad_id, side)
    batch = {"input_ids": ids, "attention_mask": mask, **_token_types(examples, [len(t) for t in tails], side),
             **_stack_images(examples, family, images)}
    if positions and "mm_token_type_ids" not in batch:
        batch["position_ids"] = (mask.cumsum(1) - 1).clamp(min=0)
    return batch


def training_batch(examples: list[dict], family: str, pad_id: int, eos_id: int,
                   images: list[dict] | None = None) -> dict[str, torch.Tensor]:
    """Prompt + gold answer + EOS; the loss is on the answer and EOS only."""
    answers = [list(ex["options"][ex["answer"]]) + [eos_id] for ex in examples]
    batch = _batch(examples, answers, family, pad_id, images)
    labels, _ = pad_batch([[-100] * len(ex["prompt_ids"]) + a for ex, a in zip(examples, answers)], -100)
    return {**batch, "labels": labels}


def scoring_batch(examples: list[dict], family: str, pad_id: int, heads: list[list[int]],
                  images: list[dict] | None = None, side: Side = "right") -> dict[str, torch.Tensor]:
    """Prompt + the options' shared head tokens: the next token decides between the options."""
    return _batch(examples, heads, family, pad_id, images, side, positions=side == "left")


def option_batch(examples: list[dict], family: str, pad_id: int, images: list[dict] | None = None
                 ) -> tuple[dict, list[tuple[int, int, int]]]:
    """One sequence per (question, option): prompt + the whole option continuation (the general path).

    Returns the batch and, per sequence, (question index, option index, continuation length).
    """
    owners, flat, tails, flat_images = [], [], [], []
    for qi, ex in enumerate(examples):
        for oi, opt in enumerate(ex["options"]):
            owners.append((qi, oi, len(opt)))
            flat.append(ex)
            tails.append(list(opt))
            if images is not None:
                flat_images.append(images[qi])
    return _batch(flat, tails, family, pad_id, flat_images if images is not None else None), owners


def prompt_batch(examples: list[dict], family: str, pad_id: int, images: list[dict] | None = None
                 ) -> dict[str, torch.Tensor]:
    """The prompts alone, left-padded: the input of greedy generation."""
    return _batch(examples, [[] for _ in examples], family, pad_id, images, side="left")


def last_positions(mask: torch.Tensor) -> torch.Tensor:
    """Index of each row's last real token (right or left padding)."""
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    return torch.where(mask.bool(), positions, -1).max(1).values
