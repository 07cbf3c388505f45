"""The BLINK-format loader: round trip, a hand-built BLINK parquet, one-line errors, the holdout split."""
from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from transfer.data.blink import (
    IMAGE_STRUCT,
    SCHEMA,
    Row,
    holdout_split,
    list_configs,
    read_split,
    write_split,
)
from transfer.data.prompts import format_prompt
from transfer.data.question import Question


def solid(color: tuple[int, int, int], size: int = 16) -> Image.Image:
    image = Image.new("RGB", (size, size), color)
    image.putpixel((1, 2), (color[2], color[0], color[1]))   # not uniform, so a pixel mix-up shows
    return image


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def rows(n: int) -> list[Row]:
    """Rows with 1-4 images and 2-5 choices, gold index varying."""
    out = []
    for i in range(n):
        n_choices = 2 + i % 4
        out.append(Row(question=f"Question {i}?", sub_task=f"sub{i % 2}",
                       images=[solid((10 * i, 20 * k, 200)) for k in range(1 + i % 4)],
                       choices=[f"option {i}.{k}" for k in range(n_choices)], answer=i % n_choices,
                       explanation=f"because {i}"))
    return out


def test_round_trip(tmp_path: Path) -> None:
    written = rows(9)
    path = write_split(tmp_path, "Counting", "val", written)
    assert path == tmp_path / "Counting" / "val-00000-of-00001.parquet"
    frame = pl.read_parquet(path)
    assert frame.schema == SCHEMA                       # the exact BLINK columns, in order
    assert frame["answer"].to_list()[:3] == ["(A)", "(B)", "(C)"]
    assert frame["image_4"].to_list()[0] is None        # unused slots are null
    assert frame["image_1"].to_list()[0]["path"] == "val_Counting_1_1.png"
    questions = read_split(tmp_path, "Counting", "val")
    assert [q.idx for q in questions] == [f"val_Counting_{n}" for n in range(1, 10)]
    for q, row in zip(questions, written):
        assert q.task == "Counting"
        assert q.choices == row["choices"] and q.answer == row["answer"]
        assert q.prompt == format_prompt(row["question"], row["choices"])
        assert q.meta == {"sub_task": row["sub_task"], "explanation": row["explanation"]}
        assert len(q.images) == len(row["images"])
        for got, want in zip(q.images, row["images"]):
            assert got.mode == "RGB" and np.array_equal(np.asarray(got), np.asarray(want))
    assert list_configs(tmp_path) == ["Counting"]
    assert not list(path.parent.glob(".*tmp"))         # no temp file left behind


def blink_frame(records: list[dict]) -> pl.DataFrame:
    """A frame in the HF BLINK layout, built directly (not through write_split)."""
    columns = {name: [r.get(name) for r in records] for name in SCHEMA.names()}
    return pl.DataFrame(columns, schema=SCHEMA)


def image_cell(image: Image.Image, name: str) -> dict:
    return {"bytes": png(image), "path": name}


def test_reads_hand_built_blink_parquet_with_null_slots_and_shards(tmp_path: Path) -> None:
    red, green, blue = solid((255, 0, 0)), solid((0, 255, 0)), solid((0, 0, 255))
    first = [
        {"idx": "val_Jigsaw_1", "question": "q1", "sub_task": "Jigsaw",
         "image_1": image_cell(red, "a.png"), "image_2": image_cell(green, "b.png"),
         "image_3": image_cell(blue, "c.png"), "image_4": None,
         "choices": ["the second image", "the third image"], "answer": "(B)", "prompt": "P1", "explanation": ""},
        {"idx": "val_Jigsaw_2", "question": "q2", "sub_task": "Jigsaw",
         "image_1": image_cell(Image.new("L", (8, 8), 90), "gray.png"),
         "choices": ["x", "y", "z"], "answer": "(C)", "prompt": "P2", "explanation": None},
    ]
    second = [
        {"idx": "val_Jigsaw_3", "question": "q3", "sub_task": "Jigsaw",
         "image_1": image_cell(blue, "d.png"), "image_2": None, "image_3": None,
         "image_4": image_cell(red, "e.png"),
         "choices": ["1", "2", "3", "4"], "answer": "(A)", "prompt": "P3", "explanation": "why"},
    ]
    (tmp_path / "Jigsaw").mkdir()
    blink_frame(second).write_parquet(tmp_path / "Jigsaw" / "val-00001-of-00002.parquet")
    blink_frame(first).write_parquet(tmp_path / "Jigsaw" / "val-00000-of-00002.parquet")
    questions = read_split(tmp_path, "Jigsaw", "val")
    assert [q.idx for q in questions] == ["val_Jigsaw_1", "val_Jigsaw_2", "val_Jigsaw_3"]   # shards sorted
    assert [len(q.images) for q in questions] == [3, 1, 2]
    assert [len(q.choices) for q in questions] == [2, 3, 4]
    assert [q.answer for q in questions] == [1, 2, 0]
    assert [q.prompt for q in questions] == ["P1", "P2", "P3"]
    assert questions[1].images[0].mode == "RGB" and questions[1].images[0].getpixel((0, 0)) == (90, 90, 90)
    assert questions[2].images[1].getpixel((5, 5)) == (255, 0, 0)   # image_4 kept, null slots dropped
    assert questions[2].meta == {"sub_task": "Jigsaw", "explanation": "why"}


GOOD = {"idx": "val_Counting_7", "question": "q", "sub_task": "Counting", "choices": ["1", "2"],
        "answer": "(A)", "prompt": "p", "explanation": ""}


@pytest.mark.parametrize("change, field", [
    ({"image_1": None}, "image_1..image_4"),
    ({"image_2": {"bytes": b"not an image", "path": "x.png"}}, "image_2"),
    ({"image_1": {"bytes": None, "path": "elsewhere.png"}}, "image_1"),
    ({"answer": "(C)"}, "answer"),
    ({"answer": "hidden"}, "answer"),
    ({"choices": ["only one"]}, "choices"),
    ({"choices": None}, "choices"),
])
def test_bad_row_gives_one_line_error_naming_file_row_and_field(tmp_path: Path, change: dict, field: str) -> None:
    good = {**GOOD, "idx": "val_Counting_1", "image_1": image_cell(solid((1, 2, 3)), "ok.png")}
    bad = {**GOOD, "image_1": image_cell(solid((1, 2, 3)), "ok.png"), **change}
    file = tmp_path / "Counting" / "val-00000-of-00001.parquet"
    file.parent.mkdir()
    blink_frame([good, bad]).write_parquet(file)
    with pytest.raises(ValueError) as error:
        read_split(tmp_path, "Counting", "val")
    message = str(error.value)
    assert "\n" not in message
    assert str(file) in message and "row 1" in message and "val_Counting_7" in message
    assert f"field {field}:" in message


def test_missing_column_is_named(tmp_path: Path) -> None:
    record = {**GOOD, "image_1": image_cell(solid((1, 2, 3)), "ok.png")}
    file = tmp_path / "Counting" / "val-00000-of-00001.parquet"
    file.parent.mkdir()
    blink_frame([record]).drop("answer").write_parquet(file)
    with pytest.raises(ValueError, match=r"val-00000-of-00001\.parquet: missing column\(s\) answer;"):
        read_split(tmp_path, "Counting", "val")


def test_optional_columns_may_be_absent(tmp_path: Path) -> None:
    file = tmp_path / "Counting" / "val-00000-of-00001.parquet"
    file.parent.mkdir()
    pl.DataFrame({"idx": ["val_Counting_1"], "question": ["q"], "image_1": [image_cell(solid((5, 5, 5)), "a")],
                  "choices": [["1", "2"]], "answer": ["(B)"], "prompt": ["p"]},
                 schema={"idx": pl.String, "question": pl.String, "image_1": IMAGE_STRUCT,
                         "choices": pl.List(pl.String), "answer": pl.String, "prompt": pl.String}
                 ).write_parquet(file)
    [question] = read_split(tmp_path, "Counting", "val")
    assert question.answer == 1 and len(question.images) == 1
    assert question.meta == {"sub_task": None, "explanation": None}


def test_missing_config_and_split_list_what_is_there(tmp_path: Path) -> None:
    write_split(tmp_path, "Counting", "val", rows(2))
    write_split(tmp_path, "Jigsaw", "val", rows(2))
    with pytest.raises(FileNotFoundError, match="no BLINK config 'Art_Style' .*configs present: Counting, Jigsaw$"):
        read_split(tmp_path, "Art_Style", "val")
    with pytest.raises(FileNotFoundError, match="no test-\\*.parquet in .*Counting; splits present: val$"):
        read_split(tmp_path, "Counting", "test")


def test_write_split_refuses_bad_rows_and_foreign_shards(tmp_path: Path) -> None:
    bad = rows(1)[0]
    with pytest.raises(ValueError, match="val_Counting_1: answer index 5 out of range for 2 choices"):
        write_split(tmp_path, "Counting", "val", [{**bad, "answer": 5}])
    with pytest.raises(ValueError, match="expected 1-4 images, got 0"):
        write_split(tmp_path, "Counting", "val", [{**bad, "images": []}])
    (tmp_path / "Counting").mkdir(exist_ok=True)
    (tmp_path / "Counting" / "val-00001-of-00002.parquet").write_bytes(b"")
    with pytest.raises(FileExistsError, match="other val shards"):
        write_split(tmp_path, "Counting", "val", rows(1))


def questions(n: int, n_choices: int) -> list[Question]:
    return [Question(idx=f"val_Counting_{i}", task="Counting", prompt="p", image_data=[],
                     choices=[str(k) for k in range(n_choices)], answer=i % n_choices) for i in range(n)]


def test_holdout_split_is_deterministic_disjoint_complete_and_balanced() -> None:
    pool = questions(203, 4)
    train, held_out = holdout_split(pool, 0.6)
    again = holdout_split(list(reversed(pool)), 0.6)
    assert {q.idx for q in train} == {q.idx for q in again[0]}               # order of input does not matter
    assert not {q.idx for q in train} & {q.idx for q in held_out}
    assert sorted(q.idx for q in train + held_out) == sorted(q.idx for q in pool)
    assert [q.idx for q in train] == [q.idx for q in pool if q in train]      # input order kept
    per_answer = Counter(q.answer for q in pool)
    train_counts = Counter(q.answer for q in train)
    assert all(abs(train_counts[a] - 0.6 * per_answer[a]) < 1 for a in per_answer)   # balanced per answer
    assert len(train) == round(0.6 * len(pool))
    other_salt = holdout_split(pool, 0.6, salt="seed-1")[0]
    assert {q.idx for q in other_salt} != {q.idx for q in train}


def test_holdout_split_gives_a_small_task_training_questions() -> None:
    """One question per answer: per-answer rounding would train on none; the total is what the fraction says."""
    pool = questions(4, 4)
    assert sorted(q.answer for q in pool) == [0, 1, 2, 3]
    train, held_out = holdout_split(pool, 0.5)
    assert len(train) == 2 and len(held_out) == 2


def test_holdout_split_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="train_fraction must be in"):
        holdout_split(questions(4, 2), 1.5)
    with pytest.raises(ValueError, match="duplicate idx 'val_Counting_0'"):
        holdout_split(questions(4, 2) + questions(1, 2), 0.5)
