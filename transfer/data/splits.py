"""Which questions a cell trains and evaluates on, for the synthetic suite and for real BLINK.

The synthetic suite is generated once into the cache (keyed by its parameters) and then read by the same
BLINK loader as the real dataset.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

from transfer import timing
from transfer.data.blink import holdout_split, list_configs, read_split
from transfer.data.question import Question
from transfer.locks import file_lock
from transfer.tasks import TASK_NAMES

log = logging.getLogger("transfer")
SOURCES = ("synthetic", "blink")


def params_key(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _generate_once(target: Path, generate) -> Path:
    """Run `generate(tmp_dir)` unless `target` exists; the finished folder appears atomically."""
    with file_lock(target.with_name(target.name + ".lock")):
        if not target.exists():
            tmp = target.with_name(target.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            with timing.timed("data_generation"):
                generate(tmp)
            tmp.rename(target)
    return target


def synthetic_suite_root(data: dict, cache_dir: Path) -> Path:
    from transfer.data.synthetic import code_fingerprint, generate_suite

    val_size = data.get("val_size")
    if val_size is not None and (not isinstance(val_size, int) or val_size < 1):
        raise ValueError(f"data.val_size={val_size!r}; expected a positive integer, or null for BLINK's val sizes")
    params = {**{k: data[k] for k in ("seed", "train_size", "image_size")}, "code": code_fingerprint(),
              **({"val_size": val_size} if val_size else {})}   # keys of suites with BLINK's sizes stay as they were
    val_sizes = dict.fromkeys(TASK_NAMES, val_size) if val_size else None
    target = cache_dir / "data" / f"synthetic-{params_key(params)}"
    return _generate_once(target, lambda tmp: generate_suite(tmp, seed=data["seed"], train_size=data["train_size"],
                                                             val_sizes=val_sizes, image_size=data["image_size"]))


def base_data_root(base: dict, image_size: int, cache_dir: Path) -> Path:
    from transfer.data.synthetic import code_fingerprint
    from transfer.data.synthetic.base import generate_base

    params = {"seed": base["data_seed"], "size_per_kind": base["size_per_kind"], "image_size": image_size,
              "code": code_fingerprint()}
    target = cache_dir / "data" / f"base-{params_key(params)}"
    return _generate_once(target, lambda tmp: generate_base(tmp, seed=base["data_seed"],
                                                            size_per_kind=base["size_per_kind"],
                                                            image_size=image_size))


def check_source(data: dict) -> None:
    if data["source"] not in SOURCES:
        raise ValueError(f"unknown data.source {data['source']!r}; expected one of: {', '.join(SOURCES)}")
    if data["source"] == "blink":
        root = data.get("root")
        if not root or not Path(root).is_dir():
            raise ValueError(f"data.root={root!r} is not a directory; expected a local BLINK snapshot "
                             "(<root>/<Config>/val-00000-of-00001.parquet)")
        missing = sorted(set(TASK_NAMES) - set(list_configs(Path(root))))
        if missing:
            raise ValueError(f"BLINK snapshot {root} lacks configs: {', '.join(missing)}")


class TaskData:
    """Train and eval questions per task, as configured by the `data` group."""

    def __init__(self, data: dict, cache_dir: Path):
        check_source(data)
        self.data = data
        self.root = synthetic_suite_root(data, cache_dir) if data["source"] == "synthetic" else Path(data["root"])
        self.train_root = Path(data["train_root"]) if data.get("train_root") else None
        self._holdout: dict[str, tuple[list[Question], list[Question]]] = {}

    def _blink_holdout(self, task: str) -> tuple[list[Question], list[Question]]:
        """(train, eval) questions of one task's val split; read and split once per task."""
        if task not in self._holdout:
            self._holdout[task] = holdout_split(read_split(self.root, task, "val"),
                                                self.data["holdout_train_fraction"], salt=task)
        return self._holdout[task]

    def train(self, task: str) -> list[Question]:
        if self.data["source"] == "synthetic":
            questions = read_split(self.root, task, "train")
        elif self.train_root is not None:
            questions = read_split(self.train_root, task, "train")
        else:
            questions = self._blink_holdout(task)[0]
        limit = self.data.get("train_limit")
        return questions[:limit] if limit else questions

    def eval(self, task: str) -> list[Question]:
        if self.holdout:
            questions = self._blink_holdout(task)[1]
        else:
            questions = read_split(self.root, task, self.data["eval_split"])
        limit = self.data.get("eval_limit")
        return questions[:limit] if limit else questions

    @property
    def holdout(self) -> bool:
        """True when training questions are carved out of BLINK's val split (no separate train data)."""
        return self.data["source"] == "blink" and self.train_root is None
