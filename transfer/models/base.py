"""The "pretrained" model a cell starts from.

Real path: the checkpoint as is (hub id or local directory). Embedded default: a tiny model of the family
built from config and given a short full-finetune on generic visual-language data (never the 13 tasks'
train splits), cached under its config hash and shared by every cell and seed.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

from transfer import timing
from transfer.data.blink import read_split
from transfer.distributed import world_size
from transfer.data.splits import TaskData, base_data_root, params_key
from transfer.data.synthetic import code_fingerprint
from transfer.data.synthetic.base import BASE_KINDS
from transfer.locks import file_lock
from transfer.models.encode import encode_questions
from transfer.models.families import load_pretrained
from transfer.models.tiny import build_tiny
from transfer.train import finetune

log = logging.getLogger("transfer")
BASE_TRAIN_KEYS = ("schedule", "weight_decay", "max_grad_norm", "grad_accum")
CHAT_WORDS = ["USER: ASSISTANT: User: Assistant: user assistant system"]


def tokenizer_corpus(base_questions: list, suite: TaskData, tasks: list[str]) -> list[str]:
    """Text the tiny tokenizer is trained on: base prompts, the suite's train prompts and the answer letters."""
    corpus = [q.prompt for q in base_questions] + CHAT_WORDS + [" A B C D E", "A B C D E"]
    for task in tasks:
        corpus += [q.prompt for q in suite.train(task)[:50]]
    return corpus


def base_key(model: dict, base: dict, train: dict, data: dict) -> str:
    return params_key({"family": model["family"], "tiny": dict(model["tiny"]), "answer_prefix": model["answer_prefix"],
                       "base": dict(base), "train": {k: train[k] for k in BASE_TRAIN_KEYS},
                       "suite": {k: data[k] for k in ("seed", "train_size", "image_size")},
                       "data_code": code_fingerprint()})


def base_checkpoint(model: dict, base: dict, train: dict, suite: TaskData, tasks: list[str], cache_dir: Path) -> str:
    """The checkpoint every cell of `model` starts from (built and cached for the embedded default)."""
    if model.get("checkpoint"):
        return str(model["checkpoint"])
    target = cache_dir / "models" / f"{model['name']}-{base_key(model, base, train, suite.data)}"
    if world_size() > 1 and not (target / "config.json").exists():
        raise ValueError(f"the embedded base model {target.name} is not built yet and this cell has {world_size()} "
                         "processes; build it with one process first (e.g. run the model's none cell)")
    with file_lock(target.with_name(target.name + ".lock")):
        if not (target / "config.json").exists():
            _train_base(model, base, train, suite, tasks, target)
    return str(target)


def _train_base(model: dict, base: dict, train: dict, suite: TaskData, tasks: list[str], target: Path) -> None:
    family, image_size = model["family"], model["tiny"]["image_size"]
    root = base_data_root(base, image_size, target.parent.parent)
    questions = [q for kind in BASE_KINDS for q in read_split(root, kind, "train")]
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    build_tiny(family, dict(model["tiny"]), tokenizer_corpus(questions, suite, tasks), base["init_seed"], tmp / "init")
    loaded = load_pretrained(family, tmp / "init")
    log.info("base stage for %s: %d generic questions, %d steps", model["name"], len(questions), base["steps"])
    with timing.timed("preprocessing"):
        examples = encode_questions(loaded.processor, family, model["answer_prefix"], questions)
    base_train = {**dict(train), **{k: base[k] for k in ("steps", "lr", "batch_size", "warmup_steps")}, "save_steps": 0}
    trained, _ = finetune(loaded.model, examples, family=family, tokenizer=loaded.tokenizer, train=base_train,
                          out_dir=tmp, seed=base["init_seed"], lora=None, desc=f"base {model['name']}")
    trained.save_pretrained(tmp / "base")
    loaded.processor.save_pretrained(tmp / "base")
    shutil.rmtree(tmp / "checkpoints", ignore_errors=True)
    (tmp / "base").rename(target)
    shutil.rmtree(tmp, ignore_errors=True)
