"""Re-scoring stored predictions under a new answer key: gold, correct and scores change, nothing is recomputed."""
from __future__ import annotations

import json

import polars as pl
import pytest
from PIL import Image

from tests.helpers import run_cli
from transfer.atomic import write_parquet
from transfer.data.blink import write_split
from transfer.records import PREDICTION_SCHEMA, SCORE_SCHEMA, read_sweep
from transfer.rescore import rescore_sweep

IDS = ["val_Counting_1", "val_Counting_2", "val_Counting_3", "val_Counting_4"]


def _cell(sweep, source, predicted, gold=(0, 1, 2, 3), targets=("Counting",), schema=SCORE_SCHEMA):
    """A finished cell's records: every target scored on 4 questions (`schema`: the score columns written)."""
    cell = sweep / "cells" / "m" / source / "seed=0"
    rows = [{"sweep": sweep.name, "model": "m", "source_task": source, "seed": 0, "idx": f"val_{t}_{n}",
             "target_task": t, "gold": g, "predicted": p, "correct": p == g, "predicted_raw": p, "loglik": [0.0] * 4,
             "text": None} for t in targets for n, g, p in zip(range(1, 5), gold, predicted)]
    write_parquet(pl.DataFrame(rows, schema=PREDICTION_SCHEMA), cell / "predictions.parquet")
    scores = []
    for t in targets:
        correct = sum(r["correct"] for r in rows if r["target_task"] == t)
        scores.append({k: None for k in schema} | {
            "sweep": sweep.name, "model": "m", "source_task": source, "seed": 0, "target_task": t, "n": 4,
            "correct": correct, "accuracy": correct / 4, "correct_raw": correct, "accuracy_raw": correct / 4,
            "unparsed": 0, "unparsed_share": 0.0, "config_hash": "h", "data_revision": "old"})
    write_parquet(pl.DataFrame([{k: row[k] for k in schema} for row in scores], schema=schema),
                  cell / "scores.parquet")
    return cell


def _blink_key(root, answers: list[int]):
    """A BLINK-format snapshot holding only Counting's val questions, with these answers."""
    rows = [{"question": "How many?", "sub_task": "", "images": [Image.new("RGB", (8, 8))], "explanation": "",
             "choices": ["1", "2", "3", "4"], "answer": a} for a in answers]
    write_split(root, "Counting", "val", rows)
    return root


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


def test_a_snapshot_key_records_its_hub_revision_and_a_target_it_lacks_keeps_its_own(tmp_path, caplog):
    sweep = tmp_path / "s"
    _cell(sweep, "none", predicted=[0, 1, 0, 0], targets=("Counting", "Jigsaw"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    key = _blink_key(tmp_path / "hub" / "datasets--BLINK" / "snapshots" / commit, answers=[0, 1, 0, 3])
    summary = rescore_sweep(sweep, key, tmp_path / "s2")
    assert summary["changed_answers"] == {"Counting": 1} and summary["revision_kept"] == ["Jigsaw"]
    assert "the key holds no question of Jigsaw" in caplog.text
    scores = pl.read_parquet(tmp_path / "s2" / "cells" / "m" / "none" / "seed=0" / "scores.parquet")
    revisions = dict(scores.select("target_task", "data_revision").iter_rows())
    assert revisions["Counting"].startswith(f"rev:{commit[:12]} sha256:") and revisions["Jigsaw"] == "old"
    assert dict(scores.select("target_task", "correct").iter_rows()) == {"Counting": 3, "Jigsaw": 2}


def test_records_of_an_older_version_are_rescored_and_read_beside_new_ones(tmp_path):
    """Score files without the unparsed share and the data revision (cells of an older version) stay readable."""
    sweep = tmp_path / "s"
    old = {k: v for k, v in SCORE_SCHEMA.items() if k not in ("unparsed_share", "data_revision")}
    _cell(sweep, "none", predicted=[0, 1, 2, 3], schema=old)
    _cell(sweep, "Jigsaw", predicted=[0, 1, 2, 2])
    key = tmp_path / "key.csv"
    pl.DataFrame({"idx": IDS[3:], "answer": ["C"]}).write_csv(key)
    rescore_sweep(sweep, key, tmp_path / "s2")
    scores = read_sweep(tmp_path / "s2").sort("source_task")
    assert scores["source_task"].to_list() == ["Jigsaw", "none"] and scores["correct"].to_list() == [4, 3]
    assert scores["data_revision"].str.starts_with("table:key.csv").all()
    assert scores["unparsed_share"].to_list() == [0.0, None]   # the older cell did not record it
