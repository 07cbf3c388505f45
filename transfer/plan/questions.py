"""What a cell reads, without running a model: questions per task and prompt tokens per question.

Question counts come from the data: the synthetic suite's configured sizes (`data.train_size`, `data.val_size`
or BLINK's val sizes) or a BLINK snapshot's files (the val split carved by `transfer.data.splits.TaskData`), with
`data.train_limit` / `data.eval_limit` applied. Prompt tokens are counted with the processor a cell would load,
on a sample of each task's questions (the chat prompt with every image expanded to its image tokens):

- a real checkpoint found locally (a directory, or the hub cache): its processor, with `model.pixels` applied;
- otherwise the family's reference processor (`transfer.models.reference`: the real image processor, chat template
  and special tokens, a locally trained tokenizer), so image tokens follow the real geometry and pixel budget
  exactly and text tokens are an estimate;
- the embedded default: the pretrained tiny model's processor once it is pretrained; before that a
  stand-in built from the family's tiny geometry and a tokenizer trained on the sampled prompts (an estimate).
"""
from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path

from transfer.cache import params_key
from transfer.data.prompts import format_prompt
from transfer.data.question import Question
from transfer.spec import CellSpec
from transfer.tasks import TASK_NAMES, TASKS

SAMPLE = 8   # questions per task whose prompts are tokenized


@dataclass(frozen=True)
class TaskProfile:
    """One task as the cells of one model read it."""
    train_questions: int
    eval_questions: int
    train_tokens: float     # mean prompt tokens per training question
    eval_tokens: float      # mean prompt tokens per evaluation question
    image_tokens: float     # mean image tokens per evaluation question (part of eval_tokens)


@dataclass(frozen=True)
class Profile:
    tasks: dict[str, TaskProfile]
    tokens_from: str        # how the tokens were counted (the cells' own processor, or an estimate's)


_PROFILES: dict[str, Profile] = {}


def profile(spec: CellSpec) -> Profile:
    """The task profile of the cells of `spec`'s model (computed once per model configuration and data)."""
    model = spec.model
    if model.checkpoint is None:   # the embedded base model: its name, architecture and pretraining
        decides = {"model": dataclasses.asdict(model), "cache": str(spec.cache_dir),
                   "pretrain": dataclasses.asdict(spec.pretrain)}
    else:                          # a checkpoint's processor, or the family's reference one (shared by sizes)
        decides = {"processor": model.checkpoint if _local(model.checkpoint) else f"reference:{model.family}",
                   "family": model.family, "pixels": model.pixels}
    key = params_key({**decides, "data": dataclasses.asdict(spec.data)})
    if key not in _PROFILES:
        counts, samples = _questions(spec)
        processor, tokens_from = _processor(spec, [q for pair in samples.values() for q in pair[1]])
        tasks = {}
        for task, (n_train, n_eval) in counts.items():
            train_sample, eval_sample = samples[task]
            train, _ = _tokens(processor, spec, train_sample)
            evaluation, images = _tokens(processor, spec, eval_sample)
            tasks[task] = TaskProfile(n_train, n_eval, train, evaluation, images)
        _PROFILES[key] = Profile(tasks, tokens_from)
    return _PROFILES[key]


def _limit(n: int, limit: int | None) -> int:
    return min(n, limit) if limit else n


def _spread(questions: list[Question]) -> list[Question]:
    """At most SAMPLE questions, evenly spaced over the list."""
    if len(questions) <= SAMPLE:
        return questions
    return [questions[i * len(questions) // SAMPLE] for i in range(SAMPLE)]


def _questions(spec: CellSpec) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[list, list]]]:
    """Per task (train, eval) question counts and (train, eval) samples to tokenize."""
    data, tasks = spec.data, TASK_NAMES   # every target and every source
    counts, samples = {}, {}
    if data.source == "synthetic":
        from transfer.embedded.suite import generate_rows

        for task in tasks:
            val = data.val_size or TASKS[task].val_size
            n_eval = data.train_size if data.eval_split == "train" else val
            counts[task] = (_limit(data.train_size, data.train_limit), _limit(n_eval, data.eval_limit))
            samples[task] = tuple([_question(row, task, f"{split}_{task}_{i}") for i, row in enumerate(
                generate_rows(task, SAMPLE, seed=data.seed, split=split, image_size=data.image_size))]
                for split in ("train", "val"))
        return counts, samples
    from transfer.data.splits import TaskData

    loaded = TaskData(data, Path(data.root))
    for task in tasks:
        train, evaluation = loaded.train(task), loaded.eval(task)
        counts[task] = (len(train), len(evaluation))
        samples[task] = (_spread(train), _spread(evaluation))
    return counts, samples


def _question(row: dict, task: str, idx: str) -> Question:
    return Question(idx, task, format_prompt(row["question"], row["choices"]), row["images"], row["choices"],
                    row["answer"])


def _processor(spec: CellSpec, prompts: list[Question]):
    """(processor, how its tokens are counted) for `spec`'s model."""
    from transfer.models.families import load_processor

    model = spec.model
    pixels = model.pixels.processor_kwargs() if model.pixels else None
    if model.checkpoint is None:
        from transfer.embedded.pretrain import pretrain_key

        built = spec.cache_dir / "models" / f"{model.name}-{pretrain_key(spec)}"
        if (built / "config.json").exists():
            return load_processor(model.family, built), "the pretrained tiny model's processor"
        return (_tiny_stand_in(spec, prompts), "the family's tiny geometry and a tokenizer trained on the sampled "
                "prompts (estimate: the tiny model is not pretrained yet)")
    if _local(model.checkpoint):
        return load_processor(model.family, model.checkpoint, pixels), f"{model.checkpoint}'s processor"
    return (load_processor(model.family, _reference(model.family), pixels),
            f"the {model.family} family's reference processor (transfer/models/reference.py; the checkpoint is not "
            "downloaded): image tokens exact, text tokens from a small local tokenizer (an overestimate)")


def _local(checkpoint: str) -> bool:
    """True when the checkpoint's processor can be read without a download."""
    if Path(checkpoint).expanduser().is_dir():
        return True
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(checkpoint, "preprocessor_config.json"), str)


_REFERENCE: dict[str, Path] = {}


def _reference(family: str) -> Path:
    """The family's reference processor files, written once per process."""
    if family not in _REFERENCE:
        from transfer.models.reference import save_reference_processor

        _REFERENCE[family] = save_reference_processor(family, Path(tempfile.mkdtemp(prefix=f"plan-{family}-")))
    return _REFERENCE[family]


def _tiny_stand_in(spec: CellSpec, prompts: list[Question]):
    from transfer.embedded.pretrain import CHAT_WORDS
    from transfer.embedded.tiny import build_tiny
    from transfer.models.families import load_processor

    corpus = [q.prompt for q in prompts] + CHAT_WORDS + [" A B C D E", "A B C D E"]
    out = Path(tempfile.mkdtemp(prefix=f"plan-{spec.model.name}-"))
    build_tiny(spec.model.family, dataclasses.asdict(spec.model.tiny), corpus, spec.pretrain.init_seed, out)
    return load_processor(spec.model.family, out)


def _tokens(processor, spec: CellSpec, questions: list[Question]) -> tuple[float, float]:
    """Mean prompt tokens and mean image tokens per question of a sample (0, 0 for none)."""
    if not questions:
        return 0.0, 0.0
    from transfer.encode import chat_prompt, processor_images

    image_id = processor.image_token_id
    total = images = 0
    for q in questions:
        text = chat_prompt(processor, len(q.image_data), q.prompt)
        ids = processor(images=processor_images(spec.model.family, q.images), text=[text],
                        return_tensors="np")["input_ids"][0]
        total += len(ids)
        images += int((ids == image_id).sum())
    return total / len(questions), images / len(questions)
