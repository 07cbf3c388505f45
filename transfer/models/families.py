"""The three VLM families: loading a checkpoint (hub id or local dir) and its processor, the chat format.

The embedded tiny models (transfer/embedded/tiny.py) are saved with `save_pretrained` and come back through the
same `load_pretrained` as a real checkpoint, so both paths share every line below.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoProcessor, Qwen2_5_VLProcessor
from transformers.integrations.deepspeed import unset_hf_deepspeed_config
from transformers.processing_utils import ProcessorMixin


class Qwen25VLImageOnlyProcessor(Qwen2_5_VLProcessor):
    """Qwen2.5-VL's processor without the video processor (whose classes need torchvision).

    Same behaviour for images and text; AutoProcessor does not know this class, so load it with
    `Qwen25VLImageOnlyProcessor.from_pretrained(dir)`.
    """

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        self.image_token, self.video_token = "<|image_pad|>", "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template, **kwargs)


@dataclass
class LoadedModel:
    family: str
    model: torch.nn.Module
    processor: ProcessorMixin

    @property
    def tokenizer(self):
        return self.processor.tokenizer


def load_processor(family: str, checkpoint: str | Path, pixels: dict | None = None) -> ProcessorMixin:
    """The checkpoint's processor; `pixels` (PixelSpec.processor_kwargs) sets its image processor's budget over
    whatever the checkpoint stores (given to the image processor alone, not to the tokenizer)."""
    parts = {"image_processor": AutoImageProcessor.from_pretrained(str(checkpoint), **pixels)} if pixels else {}
    if family == "qwen":
        return Qwen25VLImageOnlyProcessor.from_pretrained(str(checkpoint), **parts)
    return AutoProcessor.from_pretrained(str(checkpoint), **parts)


def load_pretrained(family: str, checkpoint: str | Path, dtype: str = "float32", pixels: dict | None = None
                    ) -> LoadedModel:
    """Load a checkpoint of `family` from a hub id or a local directory (the real and the embedded path)."""
    processor = load_processor(family, checkpoint, pixels)
    unset_hf_deepspeed_config()   # load whole, as in a new process: a ZeRO-3 finetune leaves its global flag set
    model = AutoModelForImageTextToText.from_pretrained(str(checkpoint), dtype=getattr(torch, dtype))
    return LoadedModel(family, model, processor)
