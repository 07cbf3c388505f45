"""Diagnostic: which cue does a skill read? Scores a sweep's base model and source adapters on a task's validation
questions generated as usual and generated with one of its cues removed, so that only the planted primitive
(`transfer.embedded.planted`) still tells the gold option.

- Relative_Depth, one size: every object is drawn at one radius with its foot where it was, so the height of a
  point in the image (and occlusion) is the only depth cue left; the size cue is gone.
- Relative_Reflectance, one albedo: floor and walls share one albedo, so the pixels no longer say which surface
  is darker; the gold is still the floor point when there is one (the lower mark) and "about the same" for two
  wall points, which only the height of the points tells.

An adapter that keeps its accuracy on the ablated questions reads the cue that is left. The ablations patch the
generators' module constants for the duration of the generation; the generators themselves are unchanged.

    python -m probes.cues --sweep science --model qwen --sources Relative_Depth Relative_Reflectance
"""
from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from probes.adapter_accuracy import ROOT, print_accuracy
from transfer.data.blink import read_split
from transfer.data.question import Question
from transfer.embedded.suite import draw, generate_suite, scenes

ONE_RADIUS = 11 / 64   # of the image size: between the nearest (14 / 64) and the farthest (8 / 64) objects
PROJECT = draw.project


def project_at_one_size(thing: draw.Thing, size: int, cam_x: float = 0.0) -> tuple[float, float, float]:
    """`draw.project` with the radius fixed and the foot of the object kept where perspective puts it."""
    x, y, r = PROJECT(thing, size, cam_x)
    radius = ONE_RADIUS * size
    return x, y + r - radius, radius


@dataclass(frozen=True)
class Ablation:
    task: str
    patch: Callable[[], contextlib.AbstractContextManager]


ABLATIONS = {
    "one size": Ablation("Relative_Depth", lambda: mock.patch.object(draw, "project", project_at_one_size)),
    "one albedo": Ablation("Relative_Reflectance", lambda: mock.patch.object(scenes, "ALBEDOS", (0.55, 0.55))),
}


def questions(ablation: Ablation | None, task: str, n: int, seed: int, root: Path) -> list[Question]:
    """`n` validation questions of `task`, generated with `ablation`'s cue removed (None: as usual)."""
    with ablation.patch() if ablation else contextlib.nullcontext():
        generate_suite(root, seed=seed, train_size=0, val_sizes={task: n}, tasks=[task])
    return read_split(root, task, "val")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", required=True, help="sweep name under outputs/")
    parser.add_argument("--model", required=True, help="model name (conf/model/<name>.yaml)")
    parser.add_argument("--sources", nargs="*", default=[], help="source tasks whose adapters to score")
    parser.add_argument("-n", type=int, default=300, help="questions per set")
    parser.add_argument("--seed", type=int, default=7, help="generation seed (not the suite's: new questions)")
    parser.add_argument("--outputs", type=Path, default=ROOT / "outputs")
    args = parser.parse_args()
    sets = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, ablation in ABLATIONS.items():
            for label, removed in (("as is", None), (name, ablation)):
                sets[f"{ablation.task} ({label})"] = questions(removed, ablation.task, args.n, args.seed,
                                                               Path(tmp, f"{ablation.task} {label}"))
    print_accuracy(args.outputs / args.sweep, args.model, sets, args.sources)


if __name__ == "__main__":
    main()
