"""One multiple-choice question, as every stage after loading sees it."""
from __future__ import annotations

import io
from dataclasses import dataclass, field

from PIL import Image

LETTERS = "ABCDE"


@dataclass
class Question:
    idx: str                    # BLINK idx, e.g. "val_Counting_3"
    task: str                   # BLINK config name
    prompt: str                 # the full prompt: question + options, as in BLINK's `prompt` column
    image_data: list[bytes | Image.Image]   # 1-4 images in slot order: encoded bytes (as stored) or PIL images
    choices: list[str]          # option texts
    answer: int                 # index of the gold option in `choices`
    meta: dict = field(default_factory=dict)   # free-form extras (sub_task, explanation)

    @property
    def images(self) -> list[Image.Image]:
        """The images as RGB, decoded from the stored bytes on each access (nothing decoded is kept)."""
        out = []
        for k, data in enumerate(self.image_data):
            if isinstance(data, Image.Image):
                out.append(data)
                continue
            try:
                out.append(Image.open(io.BytesIO(data)).convert("RGB"))
            except Exception as error:   # PIL raises several types for bad bytes
                raise ValueError(f"{self.idx}: image {k + 1}: undecodable image bytes "
                                 f"({type(error).__name__}: {' '.join(str(error).split())})") from None
        return out

    @property
    def letters(self) -> list[str]:
        return list(LETTERS[: len(self.choices)])
