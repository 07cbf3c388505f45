"""Read and write BLINK-format parquet splits (real BLINK and the synthetic suite share this one path).

Layout: ``<root>/<Config>/<split>-00000-of-00001.parquet`` with the columns of HF ``BLINK-Benchmark/BLINK``:
``idx, question, sub_task, image_1..image_4 (struct{bytes, path}, null when unused), choices, answer ("(A)"),
prompt, explanation``.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
from pathlib import Path
from typing import TypedDict

import polars as pl
from PIL import Image

from transfer.data.prompts import answer_label, format_prompt
from transfer.data.question import LETTERS, Question

IMAGE_SLOTS = ("image_1", "image_2", "image_3", "image_4")
IMAGE_STRUCT = pl.Struct({"bytes": pl.Binary, "path": pl.String})
SCHEMA = pl.Schema({
    "idx": pl.String,
    "question": pl.String,
    "sub_task": pl.String,
    **{slot: IMAGE_STRUCT for slot in IMAGE_SLOTS},
    "choices": pl.List(pl.String),
    "answer": pl.String,
    "prompt": pl.String,
    "explanation": pl.String,
})
# Columns a file must have; the other image slots, sub_task and explanation are read as null when absent.
REQUIRED_COLUMNS = ("idx", "question", "image_1", "choices", "answer", "prompt")
_ANSWER = re.compile(r"^\(?([A-Z])\)?$")


class Row(TypedDict):
    """One question to write: what a generator produces and `write_split` consumes."""
    question: str
    sub_task: str
    images: list[Image.Image]   # 1-4 images
    choices: list[str]
    answer: int                 # index of the gold option
    explanation: str


def list_configs(root: str | Path) -> list[str]:
    """The config (task) directories under `root` that hold at least one parquet file, sorted."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("*.parquet")))


def split_files(root: str | Path, task: str, split: str) -> list[Path]:
    """The sorted `<split>-*.parquet` shards of one config; a one-line error says what is there instead."""
    directory = Path(root) / task
    if not directory.is_dir():
        present = ", ".join(list_configs(root)) or "none"
        raise FileNotFoundError(f"no BLINK config {task!r} under {root}; configs present: {present}")
    files = sorted(directory.glob(f"{split}-*.parquet"))
    if not files:
        splits = sorted({p.name.split("-")[0] for p in directory.glob("*.parquet")})
        raise FileNotFoundError(
            f"no {split}-*.parquet in {directory}; splits present: {', '.join(splits) or 'none'}")
    return files


_REVISIONS: dict[tuple[str, int, int], str] = {}   # (file, size, mtime) -> content hash, per process


def snapshot_revision(root: str | Path) -> str | None:
    """The hub revision of a downloaded snapshot: the commit in `.../snapshots/<commit>/` or in the metadata
    `huggingface-cli download --local-dir` leaves under `.cache/huggingface/download/`; None for other folders."""
    parts = Path(root).resolve().parts
    if "snapshots" in parts[:-1]:
        return parts[parts.index("snapshots") + 1]
    for meta in sorted((Path(root) / ".cache" / "huggingface" / "download").rglob("*.metadata")):
        first = meta.read_text().splitlines()[:1]
        if first and re.fullmatch(r"[0-9a-f]{40}", first[0].strip()):
            return first[0].strip()
    return None


def data_revision(root: str | Path, task: str, split: str) -> str:
    """What a cell read for one task and split: `rev:<hub commit> ` (when known) and the sha256 of its files."""
    digest = hashlib.sha256()
    for file in split_files(root, task, split):
        stat = file.stat()
        key = (str(file.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _REVISIONS:
            _REVISIONS[key] = hashlib.sha256(file.read_bytes()).hexdigest()
        digest.update(_REVISIONS[key].encode())
    rev = snapshot_revision(root)
    return (f"rev:{rev[:12]} " if rev else "") + f"sha256:{digest.hexdigest()[:16]}"


def read_split(root: str | Path, task: str, split: str) -> list[Question]:
    """All questions of one config and split (images kept as their bytes), answers as option indices."""
    questions = []
    for file in split_files(root, task, split):
        questions.extend(_read_file(file, task))
    return questions


def check_file(file: Path) -> int:
    """The number of questions in a BLINK-format parquet file, from its metadata; a one-line error names the file
    when it cannot be read, lacks a column, holds answers that are not strings or holds no question."""
    try:
        schema = pl.read_parquet_schema(file)
        rows = pl.scan_parquet(file).select(pl.len()).collect().item()
    except Exception as err:   # noqa: BLE001 - polars raises several types for a damaged file
        raise ValueError(f"{file}: unreadable parquet ({type(err).__name__}: {str(err).splitlines()[0]}); "
                         "expected a BLINK-format file") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in schema]
    if missing:
        raise ValueError(f"{file}: missing column(s) {', '.join(missing)}; expected the BLINK columns "
                         f"{', '.join(SCHEMA.names())}")
    if schema["answer"] != pl.String:
        raise ValueError(f"{file}: column answer is {schema['answer']}; expected strings like (A)")
    if schema["choices"] != pl.List(pl.String):
        raise ValueError(f"{file}: column choices is {schema['choices']}; expected lists of option texts")
    if rows == 0:
        raise ValueError(f"{file}: no rows; expected at least one question")
    return rows


def _read_file(file: Path, task: str) -> list[Question]:
    check_file(file)
    try:
        frame = pl.read_parquet(file)
    except Exception as err:   # noqa: BLE001 - a damaged row group shows only when read
        raise ValueError(f"{file}: unreadable parquet ({type(err).__name__}: {str(err).splitlines()[0]}); "
                         "expected a BLINK-format file") from None
    frame = frame.with_columns(pl.lit(None).alias(c) for c in SCHEMA.names() if c not in frame.columns)
    return [_to_question(row, file, n, task) for n, row in enumerate(frame.iter_rows(named=True))]


def _to_question(row: dict, file: Path, n: int, task: str) -> Question:
    idx = row["idx"]

    def fail(field: str, message: str) -> ValueError:
        return ValueError(f"{file}: row {n} (idx {idx}): field {field}: {message}")

    images = []
    for slot in IMAGE_SLOTS:
        cell = row[slot]
        if isinstance(cell, dict):   # the HF image struct; a plain binary column is read as the bytes
            if cell["bytes"] is None and cell["path"] is not None:
                raise fail(slot, f"has path {cell['path']!r} but no embedded bytes")
            cell = cell["bytes"]
        if cell is None:
            continue
        try:
            Image.open(io.BytesIO(cell))   # reads the header only: the pixels are decoded when used
        except Exception as error:   # PIL raises several types for bad bytes
            detail = " ".join(str(error).split())
            raise fail(slot, f"undecodable image bytes ({type(error).__name__}: {detail})") from None
        images.append(cell)
    if not images:
        raise fail("image_1..image_4", "no image in any slot")
    choices = row["choices"]
    if choices is None or len(choices) < 2:
        raise fail("choices", f"expected at least 2 options, got {choices!r}")
    if len(choices) > len(LETTERS):
        raise fail("choices", f"expected at most {len(LETTERS)} options, got {len(choices)}")
    letters = LETTERS[: len(choices)]
    match = _ANSWER.match(row["answer"] or "")
    if match is None or match.group(1) not in letters:
        valid = ", ".join(answer_label(i) for i in range(len(choices)))
        raise fail("answer", f"{row['answer']!r} is not one of {valid}")
    if row["prompt"] is None:
        raise fail("prompt", "is null")
    return Question(
        idx=idx,
        task=task,
        prompt=row["prompt"],
        image_data=images,
        choices=list(choices),
        answer=letters.index(match.group(1)),
        meta={"sub_task": row["sub_task"], "explanation": row["explanation"]},
    )


def write_split(root: str | Path, task: str, split: str, rows: list[Row]) -> Path:
    """Write one split in the exact BLINK schema (PNG-embedded images), atomically; returns the file."""
    directory = Path(root) / task
    path = directory / f"{split}-00000-of-00001.parquet"
    others = [p for p in directory.glob(f"{split}-*.parquet") if p != path]
    if others:
        raise FileExistsError(f"{directory} holds other {split} shards ({others[0].name}); remove them first")
    columns: dict[str, list] = {name: [] for name in SCHEMA.names()}
    for n, row in enumerate(rows, start=1):
        idx = f"{split}_{task}_{n}"
        images, choices, answer = row["images"], row["choices"], row["answer"]
        if not 1 <= len(images) <= len(IMAGE_SLOTS):
            raise ValueError(f"{idx}: expected 1-{len(IMAGE_SLOTS)} images, got {len(images)}")
        if not 2 <= len(choices) <= len(LETTERS):
            raise ValueError(f"{idx}: expected 2-{len(LETTERS)} choices, got {len(choices)}")
        if not 0 <= answer < len(choices):
            raise ValueError(f"{idx}: answer index {answer} out of range for {len(choices)} choices")
        columns["idx"].append(idx)
        columns["question"].append(row["question"])
        columns["sub_task"].append(row["sub_task"])
        for k, slot in enumerate(IMAGE_SLOTS):
            columns[slot].append(
                {"bytes": _png(images[k]), "path": f"{idx}_{k + 1}.png"} if k < len(images) else None)
        columns["choices"].append(list(choices))
        columns["answer"].append(answer_label(answer))
        columns["prompt"].append(format_prompt(row["question"], list(choices)))
        columns["explanation"].append(row["explanation"])
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{path.name}.{os.getpid()}.tmp"
    try:
        pl.DataFrame(columns, schema=SCHEMA).write_parquet(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    (image if image.mode == "RGB" else image.convert("RGB")).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def holdout_split(questions: list[Question], train_fraction: float,
                  salt: str = "") -> tuple[list[Question], list[Question]]:
    """Split one task's questions into (train, eval), deterministically by a hash of `idx`.

    Stratified by the gold answer index: within each answer group the questions are ordered by
    sha256(salt/idx) and the first ones go to train, so both parts keep the answer balance; the groups' shares
    add up to round(fraction * n) questions in all (the groups with the largest remainders, then the lowest
    answer index, take one more), so small tasks still get training questions. Both parts keep the input order.
    """
    if not 0.0 <= train_fraction <= 1.0:
        raise ValueError(f"train_fraction must be in [0, 1], got {train_fraction}")
    seen: set[str] = set()
    for q in questions:
        if q.idx in seen:
            raise ValueError(f"duplicate idx {q.idx!r}: holdout_split needs unique idx values")
        seen.add(q.idx)
    by_answer: dict[int, list[Question]] = {}
    for q in questions:
        by_answer.setdefault(q.answer, []).append(q)
    shares = {a: int(train_fraction * len(g)) for a, g in by_answer.items()}
    left = round(train_fraction * len(questions)) - sum(shares.values())
    for a in sorted(by_answer, key=lambda a: (-(train_fraction * len(by_answer[a]) - shares[a]), a))[:left]:
        shares[a] += 1
    train_ids: set[str] = set()
    for answer, group in by_answer.items():
        ranked = sorted(group, key=lambda q: hashlib.sha256(f"{salt}/{q.idx}".encode()).hexdigest())
        train_ids.update(q.idx for q in ranked[: shares[answer]])
    train = [q for q in questions if q.idx in train_ids]
    held_out = [q for q in questions if q.idx not in train_ids]
    return train, held_out
