"""The embedded base model: a tiny model of the family built from config and pretrained with a short full
finetune on generic visual-language questions (never the 13 tasks' train splits), cached under the hash of
everything that decides its weights and shared by every cell and seed."""
from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

from transfer import timing
from transfer.cache import build_once, params_key
from transfer.data.blink import read_split
from transfer.data.splits import TaskData
from transfer.distributed import world_size
from transfer.embedded.suite import code_fingerprint
from transfer.embedded.suite.generic import GENERIC_KINDS, generate_generic
from transfer.embedded.tiny import build_tiny
from transfer.encode import ENCODING, encode_questions
from transfer.locks import file_lock
from transfer.models.families import load_pretrained
from transfer.spec import CellSpec, PretrainSpec, TrainSpec
from transfer.train import finetune

log = logging.getLogger("transfer")
SHARED_TRAIN_KEYS = ("schedule", "weight_decay", "max_grad_norm", "grad_accum")   # from `train`; the rest: `pretrain`
CHAT_WORDS = ["USER: ASSISTANT: User: Assistant: user assistant system"]


def tokenizer_corpus(generic: list, suite: TaskData, tasks: list[str]) -> list[str]:
    """Text the tiny tokenizer is trained on: generic prompts, the suite's train prompts and the answer letters."""
    corpus = [q.prompt for q in generic] + CHAT_WORDS + [" A B C D E", "A B C D E"]
    for task in tasks:
        corpus += [q.prompt for q in suite.train(task)[:50]]
    return corpus


def pretrain_key(spec: CellSpec) -> str:
    model, train, data = spec.model, spec.train, spec.data
    return params_key({"family": model.family, "tiny": dataclasses.asdict(model.tiny),
                       "answer_prefix": model.answer_prefix, "pretrain": dataclasses.asdict(spec.pretrain),
                       "train": {k: getattr(train, k) for k in SHARED_TRAIN_KEYS},
                       "suite": {"seed": data.seed, "train_size": data.train_size, "image_size": data.image_size},
                       "data_code": code_fingerprint(), "encoding": ENCODING})


def generic_root(pretrain: PretrainSpec, image_size: int, cache_dir: Path) -> Path:
    """The generic pretraining questions, generated once into the cache."""
    params = {"seed": pretrain.data_seed, "size_per_kind": pretrain.size_per_kind, "image_size": image_size,
              "code": code_fingerprint()}
    return build_once(cache_dir / "data" / f"base-{params_key(params)}",
                      lambda tmp: generate_generic(tmp, seed=pretrain.data_seed, size_per_kind=pretrain.size_per_kind,
                                                   image_size=image_size))


def pretrained_checkpoint(spec: CellSpec, suite: TaskData, tasks: list[str]) -> str:
    """The directory of the embedded base model of `spec.model`, pretrained once (under a lock) and cached."""
    target = spec.cache_dir / "models" / f"{spec.model.name}-{pretrain_key(spec)}"
    if world_size() > 1 and not (target / "config.json").exists():
        raise ValueError(f"the embedded base model {target.name} is not built yet and this cell has {world_size()} "
                         "processes; build it with one process first (e.g. run the model's none cell)")
    with file_lock(target.with_name(target.name + ".lock")):
        if not (target / "config.json").exists():
            with timing.timed("pretrain"):
                _pretrain(spec, suite, tasks, target)
    return str(target)


def _pretrain(spec: CellSpec, suite: TaskData, tasks: list[str], target: Path) -> None:
    model, pretrain = spec.model, spec.pretrain
    root = generic_root(pretrain, model.tiny.image_size, spec.cache_dir)
    questions = [q for kind in GENERIC_KINDS for q in read_split(root, kind, "train")]
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    build_tiny(model.family, dataclasses.asdict(model.tiny), tokenizer_corpus(questions, suite, tasks),
               pretrain.init_seed, tmp / "init")
    loaded = load_pretrained(model.family, tmp / "init")
    log.info("pretraining the base model %s: %d generic questions, %d steps", model.name, len(questions),
             pretrain.steps)
    with timing.timed("preprocessing"):
        examples = encode_questions(loaded.processor, model.family, model.answer_prefix, questions)
    train: TrainSpec = dataclasses.replace(spec.train, steps=pretrain.steps, lr=pretrain.lr,
                                           batch_size=pretrain.batch_size, warmup_steps=pretrain.warmup_steps,
                                           save_steps=0, global_batch=None)
    trained, _ = finetune(loaded.model, examples, family=model.family, tokenizer=loaded.tokenizer, train=train,
                          out_dir=tmp, seed=pretrain.init_seed, lora=None, desc=f"pretrain {model.name}")
    trained.save_pretrained(tmp / "base")
    loaded.processor.save_pretrained(tmp / "base")
    shutil.rmtree(tmp / "checkpoints", ignore_errors=True)
    (tmp / "base").rename(target)
    shutil.rmtree(tmp, ignore_errors=True)
