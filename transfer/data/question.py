"""One multiple-choice question, as every stage after loading sees it."""
from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

LETTERS = "ABCDE"


@dataclass
class Question:
    idx: str                    # BLINK idx, e.g. "val_Counting_3"
    task: str                   # BLINK config name
    prompt: str                 # the full prompt: question + options, as in BLINK's `prompt` column
    images: list[Image.Image]   # 1-4 RGB images, in slot order (null slots dropped)
    choices: list[str]          # option texts
    answer: int                 # index of the gold option in `choices`
    meta: dict = field(default_factory=dict)   # free-form extras (sub_task, explanation)

    @property
    def letters(self) -> list[str]:
        return list(LETTERS[: len(self.choices)])
