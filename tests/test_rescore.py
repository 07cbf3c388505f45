"""Re-scoring stored predictions under a new answer key: gold, correct and scores change, nothing is recomputed."""
from __future__ import annotations

import json

import polars as pl
import pytest

from tests.helpers import run_cli
from transfer.atomic import write_parquet
from transfer.records import PREDICTION_SCHEMA, SCORE_SCHEMA
from transfer.rescore import rescore_sweep

IDS = ["val_Counting_1", "val_Counting_2", "val_Counting_3", "val_Counting_4"]


def _cell(sweep, source, predicted, gold=(0, 1, 2, 3)):
    cell = sweep / "cells" / "m" / source / "seed=0"
    rows = [{"sweep": sweep.name, "model": "m", "source_task": source, "seed": 0, "idx": i, "target_task": "Counting",
             "gold": g, "predicted": p, "correct": p == g, "predicted_raw": p, "loglik": [0.0] * 4, "text": None}
            for i, g, p in zip(IDS, gold, predicted)]
    write_parquet(pl.DataFrame(rows, schema=PREDICTION_SCHEMA), cell / "predictions.parquet")
    correct = sum(r["correct"] for r in rows)
    score = {k: None for k in SCORE_SCHEMA} | {"sweep": sweep.name, "model": "m", "source_task": source, "seed": 0,
                                               "target_task": "Counting", "n": 4, "correct": correct,
                                               "accuracy": correct / 4, "correct_raw": correct,
                                               "accuracy_raw": correct / 4, "config_hash": "h",
                                               "data_revision": "old"}
    write_parquet(pl.DataFrame([score], schema=SCORE_SCHEMA), cell / "scores.parquet")
    return cell


def test_a_new_key_changes_gold_correct_and_scores_only(tmp_path):
    sweep = tmp_path / "s"
    _cell(sweep, "none", predicted=[0, 1, 0, 0])
    _cell(sweep, "Jigsaw", predicted=[0, 1, 2, 2])
    key = tmp_path / "key.csv"
    pl.DataFrame({"idx": IDS[2:], "answer": ["(A)", "C"]}).write_csv(key)   # question 3 -> A, question 4 -> C
    summary = rescore_sweep(sweep, key, tmp_path / "s2")
    assert summary["changed_answers"] == {"Counting": 2} and summary["cells"] == 2
    new = tmp_path / "s2" / "cells" / "m"
    base = pl.read_parquet(new / "none" / "seed=0" / "predictions.parquet")
    assert base["gold"].to_list() == [0, 1, 0, 2] and base["correct"].to_list() == [True, True, True, False]
    scores = pl.read_parquet(new / "Jigsaw" / "seed=0" / "scores.parquet")
    assert scores.select("n", "correct", "correct_raw", "sweep").row(0) == (4, 3, 3, "s2")
    assert scores["data_revision"][0].startswith("table:key.csv sha256:")
    assert pl.read_parquet(sweep / "cells" / "m" / "none" / "seed=0" / "predictions.parquet")["gold"].to_list() == [
        0, 1, 2, 3]   # the original sweep is untouched
    assert json.loads((tmp_path / "s2" / "rescore.json").read_text())["cells"] == 2
    with pytest.raises(FileExistsError, match="out='s2'"):
        rescore_sweep(sweep, key, tmp_path / "s2")


def test_the_cli_refuses_a_missing_key_in_one_line(tmp_path):
    out = run_cli(["sweep=s", "key=/no/such/key.csv"], tmp_path, module="transfer.rescore")
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0
    assert "key='/no/such/key.csv': expected an existing BLINK snapshot folder" in out.stderr
    out = run_cli(["key=x"], tmp_path, module="transfer.rescore")
    assert out.returncode == 2 and "sweep is required" in out.stderr
