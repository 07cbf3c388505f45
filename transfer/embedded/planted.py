"""The planted transfer structure of the synthetic suite: which visual primitive each generator's answer rests on.

Two tasks that rest on the same primitive with the same answer mapping form a planted positive pair; the same
primitive with opposite mappings (the other task's correct option is this task's lure) a planted negative pair;
tasks without a shared primitive are unplanted. Only the generators (which implement these mappings) and the
checks (summary statistics, tests) read this table: model, training and evaluation code never do.
"""
from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from transfer.tasks import TASK_NAMES


@dataclass(frozen=True)
class Primitive:
    name: str
    description: str


PRIMITIVES = {p.name: p for p in [
    Primitive("colour_match", "which candidate image carries the reference image's colours"),
    Primitive("leftmost_point", "which circled point of the second image lies furthest left (REF, in the first "
                                "image, always marks the leftmost of its kind)"),
    Primitive("mark_height", "which of the red (A) and blue (B) marks lies in the lower half of the image"),
    Primitive("count", "how many objects of one kind are drawn"),
    Primitive("lens", "which image carries a camera's lens vignetting and sensor grain"),
    Primitive("parallax", "which way the objects shift between two views"),
    Primitive("layout", "whether two objects sit side by side or one above the other"),
]}

# task -> (primitive, mapping): +1 the answer is the option the primitive picks, -1 the primitive picks the lure.
TASK_PRIMITIVES: dict[str, tuple[str, int]] = {
    "Art_Style": ("colour_match", +1),                  # the same palette on new content
    "Visual_Similarity": ("colour_match", +1),          # the far candidate always changes the backdrop
    "Jigsaw": ("colour_match", -1),                     # the lure is a crop of the reference's visible part
    "Visual_Correspondence": ("leftmost_point", +1),    # REF on the leftmost object; the camera moves little
    "Semantic_Correspondence": ("leftmost_point", +1),  # REF on the leftmost part; both animals face one way
    "Functional_Correspondence": ("leftmost_point", -1),   # the second tool is turned: its other part is leftmost
    "Relative_Depth": ("mark_height", +1),              # on a ground plane the closer point is the lower one
    "Relative_Reflectance": ("mark_height", +1),        # a darker surface is the (low) floor, never a (high) wall
    "Object_Localization": ("mark_height", -1),         # the perturbed box always slips below the object
    "Counting": ("count", +1),
    "Forensic_Detection": ("lens", +1),
    "Multi-view_Reasoning": ("parallax", +1),
    "Spatial_Relation": ("layout", +1),
}
RELATIONS = ("positive", "negative", "none")


def relation(source: str, target: str) -> str:
    """The planted relation of an ordered pair of distinct tasks."""
    (p, s), (q, t) = TASK_PRIMITIVES[source], TASK_PRIMITIVES[target]
    if p != q:
        return "none"
    return "positive" if s == t else "negative"


def planted_table() -> pl.DataFrame:
    """Every off-diagonal (source_task, target_task) pair with its relation and the shared primitive."""
    rows = [{"source_task": s, "target_task": t, "relation": relation(s, t),
             "primitive": TASK_PRIMITIVES[s][0] if relation(s, t) != "none" else None}
            for s in TASK_NAMES for t in TASK_NAMES if s != t]
    return pl.DataFrame(rows, schema={"source_task": pl.String, "target_task": pl.String, "relation": pl.String,
                                      "primitive": pl.String})
