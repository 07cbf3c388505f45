"""The synthetic BLINK-format suite: one small generator per paper task, written in BLINK's exact schema.

Every generator is `fn(rng, gold, size) -> Row`: it draws one question whose gold option index is `gold`, so the
caller balances gold letters exactly. All randomness comes from `random.Random(f"{seed}/{task}/{split}")`:
the same seed gives byte-identical files.
"""
from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from pathlib import Path

from transfer.atomic import write_json, write_parquet
from transfer.cache import build_once, params_key
from transfer.data.blink import Row, write_split
from transfer.embedded.planted import planted_table
from transfer.embedded.suite import images, objects, parts, scenes
from transfer.spec import DataSpec
from transfer.tasks import TASK_NAMES, TASKS

Generator = Callable[[random.Random, int, int], Row]

GENERATORS: dict[str, Generator] = {
    "Art_Style": images.art_style,
    "Counting": objects.counting,
    "Forensic_Detection": images.forensic_detection,
    "Functional_Correspondence": parts.functional_correspondence,
    "Jigsaw": images.jigsaw,
    "Multi-view_Reasoning": scenes.multi_view_reasoning,
    "Object_Localization": objects.object_localization,
    "Relative_Depth": scenes.relative_depth,
    "Relative_Reflectance": scenes.relative_reflectance,
    "Semantic_Correspondence": parts.semantic_correspondence,
    "Spatial_Relation": objects.spatial_relation,
    "Visual_Correspondence": scenes.visual_correspondence,
    "Visual_Similarity": images.visual_similarity,
}
SPLITS = ("train", "val")


def balanced_golds(rng: random.Random, n: int, n_choices: int) -> list[int]:
    """n gold indices, each option equally often (to within one), in random order."""
    golds = [i % n_choices for i in range(n)]
    rng.shuffle(golds)
    return golds


def generate_rows(task: str, n: int, *, seed: int, split: str, image_size: int = 64) -> list[Row]:
    """n questions of one task; checks each against the registry's image and option counts."""
    if task not in GENERATORS:
        raise ValueError(f"no synthetic generator for {task!r}; expected one of: {', '.join(GENERATORS)}")
    spec = TASKS[task]
    rng = random.Random(f"{seed}/{task}/{split}")
    rows = []
    for gold in balanced_golds(rng, n, spec.n_choices):
        row = GENERATORS[task](rng, gold, image_size)
        if (len(row["images"]), len(row["choices"]), row["answer"]) != (spec.n_images, spec.n_choices, gold):
            raise AssertionError(f"{task} generator returned {len(row['images'])} images, {len(row['choices'])} "
                                 f"choices, answer {row['answer']}; expected {spec.n_images}, {spec.n_choices}, "
                                 f"{gold}")
        rows.append(row)
    return rows


def code_fingerprint() -> str:
    """sha256 of the generator sources: a suite written by other code has another fingerprint."""
    digest = hashlib.sha256()
    for file in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def generate_suite(root: str | Path, *, seed: int, train_size: int, val_sizes: dict[str, int] | None = None,
                   image_size: int = 64, tasks: list[str] | None = None) -> Path:
    """Write `<root>/<Task>/{train,val}-00000-of-00001.parquet` for each task and `<root>/suite.json`.

    Val sizes default to BLINK's (`TASKS[t].val_size`); `val_sizes` overrides some or all of them.
    """
    tasks = list(TASK_NAMES if tasks is None else tasks)
    unknown = [t for t in [*tasks, *(val_sizes or {})] if t not in GENERATORS]
    if unknown:
        raise ValueError(f"unknown task {unknown[0]!r}; expected one of: {', '.join(GENERATORS)}")
    if train_size < 0 or image_size < 16:
        raise ValueError(f"need train_size >= 0 and image_size >= 16, got {train_size} and {image_size}")
    sizes = {t: {"train": train_size, "val": (val_sizes or {}).get(t, TASKS[t].val_size)} for t in tasks}
    root = Path(root)
    for task in tasks:
        for split in SPLITS:
            rows = generate_rows(task, sizes[task][split], seed=seed, split=split, image_size=image_size)
            write_split(root, task, split, rows)
    manifest = {"seed": seed, "train_size": train_size, "val_sizes": {t: sizes[t]["val"] for t in tasks},
                "image_size": image_size, "tasks": tasks, "code_sha256": code_fingerprint()}
    write_json(manifest, root / "suite.json")
    write_parquet(planted_table(), root / "planted.parquet")   # for the checks only; no model code reads it
    return root


def suite_root(data: DataSpec, cache_dir: Path) -> Path:
    """The suite of `data` (seed, sizes, image size), generated once into the cache and read like BLINK."""
    params = {"seed": data.seed, "train_size": data.train_size, "image_size": data.image_size,
              "code": code_fingerprint(), **({"val_size": data.val_size} if data.val_size else {})}
    val_sizes = dict.fromkeys(TASK_NAMES, data.val_size) if data.val_size else None
    return build_once(cache_dir / "data" / f"synthetic-{params_key(params)}",
                      lambda tmp: generate_suite(tmp, seed=data.seed, train_size=data.train_size, val_sizes=val_sizes,
                                                 image_size=data.image_size))
