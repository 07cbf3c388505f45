"""The task registry: BLINK config names, option counts, images per question and perceptual tags."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    name: str           # BLINK config name, also the source_task / target_task id
    abbrev: str         # the paper's two-letter abbreviation
    n_choices: int      # options per question in BLINK (2, 3 or 4)
    n_images: int       # images per question in BLINK
    val_size: int       # BLINK val split size
    level: str          # perceptual level: low | mid | high
    granularity: str    # pixel | crop | image

    @property
    def chance(self) -> float:
        return 1.0 / self.n_choices


# Levels and granularity follow the paper's Table 2.
_TASKS = [
    Task("Art_Style", "AS", 2, 3, 117, "high", "image"),
    Task("Counting", "CN", 4, 1, 120, "mid", "image"),
    Task("Forensic_Detection", "FD", 4, 4, 132, "high", "image"),
    Task("Functional_Correspondence", "FC", 4, 2, 130, "high", "pixel"),
    Task("Jigsaw", "JG", 2, 3, 150, "mid", "crop"),
    Task("Multi-view_Reasoning", "MR", 2, 2, 133, "mid", "image"),
    Task("Object_Localization", "OL", 2, 1, 122, "mid", "crop"),
    Task("Relative_Depth", "RD", 2, 1, 124, "low", "pixel"),
    Task("Relative_Reflectance", "RR", 3, 1, 134, "low", "pixel"),
    Task("Semantic_Correspondence", "SC", 4, 2, 139, "high", "pixel"),
    Task("Spatial_Relation", "SR", 2, 1, 143, "mid", "crop"),
    Task("Visual_Correspondence", "VC", 4, 2, 172, "low", "pixel"),
    Task("Visual_Similarity", "VS", 2, 3, 135, "high", "image"),
]
IQ_TEST = Task("IQ_Test", "IQ", 4, 1, 150, "high", "image")   # in BLINK, not in the paper's grid

TASKS: dict[str, Task] = {t.name: t for t in _TASKS}
TASK_NAMES: list[str] = [t.name for t in _TASKS]   # the 13 paper tasks, in the order of every matrix
BASELINE = "none"                                   # source_task of the zero-shot (un-finetuned) cell
ALL_BLINK: dict[str, Task] = {**TASKS, IQ_TEST.name: IQ_TEST}


def get_task(name: str) -> Task:
    """Look a task up by BLINK config name; a one-line error lists the valid names."""
    try:
        return ALL_BLINK[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; expected one of: {', '.join(ALL_BLINK)}") from None
