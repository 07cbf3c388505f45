"""Encoding questions once per processor: the chat prompt, token ids, per-token modality types and image tensors.

An encoded example holds the prompt's token ids (image tokens expanded by the family's processor), the token ids
of each option's answer continuation, the gold index, the processor's `mm_token_type_ids` where it returns them
(Qwen2.5-VL: its 3-D image positions are built from them) and, when pixels are cached, the family's image tensors
(float16 to halve memory; batches are float32, see `transfer.batch`). Without cached pixels (the real path) the
image tensors are made again per batch from the questions' stored image bytes (`ImageSource`), so memory does not
grow with the dataset.
"""
from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import torch
from transformers.processing_utils import ProcessorMixin

from transfer import timing
from transfer.atomic import write_bytes
from transfer.data.question import Question

ENCODING = 2   # the version of what an example holds; part of every encoded-cache key
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


def chat_prompt(processor: ProcessorMixin, n_images: int, text: str) -> str:
    """The user turn (images first, then the text, as BLINK's harness does) ending at the assistant's turn."""
    content = [{"type": "image"} for _ in range(n_images)] + [{"type": "text", "text": text}]
    return processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)


def processor_images(family: str, images: list) -> list:
    """Images in the nesting each family's processor expects for ONE sample."""
    return [images] if family == "idefics" else images


def _process(processor: ProcessorMixin, family: str, q: Question) -> tuple[str, dict]:
    text = chat_prompt(processor, len(q.image_data), q.prompt)
    return text, processor(images=processor_images(family, q.images), text=[text], return_tensors="pt")


def image_tensors(processor: ProcessorMixin, family: str, q: Question) -> dict[str, torch.Tensor]:
    """The image tensors the processor makes for one question (compacted as when cached)."""
    _, enc = _process(processor, family, q)
    return {k: _compact(k, v) for k, v in enc.items() if k not in TOKEN_KEYS}


def encode_question(processor: ProcessorMixin, family: str, answer_prefix: str, q: Question,
                    pixels: bool = True) -> dict:
    """One question's example; `pixels=False` leaves the image tensors out (made per batch instead)."""
    text, enc = _process(processor, family, q)
    options = [continuation_ids(processor.tokenizer, text, answer_prefix + letter) for letter in q.letters]
    example = {"idx": q.idx, "task": q.task, "prompt_ids": enc["input_ids"][0], "options": options,
               "answer": q.answer, "choices": list(q.choices)}
    if "mm_token_type_ids" in enc:
        example["token_types"] = enc["mm_token_type_ids"][0]
    if pixels:
        example["images"] = {k: _compact(k, v) for k, v in enc.items() if k not in TOKEN_KEYS}
    return example


def encode_questions(processor, family: str, answer_prefix: str, questions: list[Question],
                     pixels: bool = True) -> list[dict]:
    return [encode_question(processor, family, answer_prefix, q, pixels) for q in questions]


class ImageSource:
    """Image tensors of encoded examples made per batch from their questions (`load()` supplies them, read once
    and kept as image bytes): the real path's alternative to storing pixels with every example."""

    def __init__(self, processor: ProcessorMixin, family: str, load: Callable[[], list[Question]]):
        self.processor, self.family, self._load = processor, family, load
        self._questions: dict[str, Question] | None = None

    def __call__(self, examples: list[dict]) -> list[dict[str, torch.Tensor]] | None:
        if "images" in examples[0]:
            return None   # the examples carry their pixels
        if self._questions is None:
            self._questions = {q.idx: q for q in self._load()}
        with timing.timed("preprocessing"):
            return [image_tensors(self.processor, self.family, self._questions[ex["idx"]]) for ex in examples]


class EncodedCache:
    """Encoded questions per (task, role), kept in memory and on disk under `root` (keyed by processor)."""

    def __init__(self, root: Path, processor, family: str, answer_prefix: str, pixels: bool = True):
        self.root, self.processor, self.family, self.answer_prefix = root, processor, family, answer_prefix
        self.pixels = pixels
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
                examples = encode_questions(self.processor, self.family, self.answer_prefix, load_questions(),
                                            self.pixels)
            with timing.timed("io"):
                buffer = io.BytesIO()
                torch.save(examples, buffer)
                write_bytes(path, buffer.getvalue())
        if remember:
            self._memory[key] = examples
        return examples
