"""Shared by the diagnostics in bench/: the accuracy of a sweep's base model and of its source adapters on sets of
questions that are not the sweep's own targets (reworded questions, cue-ablated images).

Scoring is the cells' (option log-likelihood, batch calibration); adapters come from
`outputs/<sweep>/cells/<model>/<source>/seed=*/adapter`, and a source's accuracy is the mean over its seeds.
"""
from __future__ import annotations

from pathlib import Path

import polars as pl
from omegaconf import OmegaConf
from peft import PeftModel

from transfer.data.question import Question
from transfer.encode import encode_questions
from transfer.evaluate import evaluate_targets
from transfer.models.families import load_pretrained, load_processor
from transfer.tasks import BASELINE

ROOT = Path(__file__).resolve().parents[1]


def adapters(sweep: Path, model: str, source: str) -> list[Path | None]:
    if source == BASELINE:
        return [None]
    found = sorted((sweep / "cells" / model / source).glob("seed=*/adapter"))
    if not found:
        raise FileNotFoundError(f"no adapter under {sweep / 'cells' / model / source}; expected seed=*/adapter")
    return found


def print_accuracy(sweep: Path, model_name: str, questions: dict[str, list[Question]], sources: list[str]) -> None:
    """One row per source (the base first), one column per question set."""
    model = OmegaConf.load(ROOT / "conf" / "model" / f"{model_name}.yaml")
    base_scores = sweep / "cells" / model_name / BASELINE / "seed=0" / "scores.parquet"
    checkpoint = ROOT / pl.read_parquet(base_scores)["checkpoint"][0]   # kept as is when it is absolute
    processor = load_processor(model.family, checkpoint)
    encoded = {name: encode_questions(processor, model.family, model.answer_prefix, qs)
               for name, qs in questions.items()}
    print(f"{model_name}, base {checkpoint}; accuracy, mean over seeds")
    width = max(34, *(len(name) + 2 for name in questions))
    print(f"{'source':28s}" + "".join(f"{name:>{width}s}" for name in questions))
    for source in [BASELINE, *sources]:
        totals = {name: 0.0 for name in questions}
        runs = adapters(sweep, model_name, source)
        for adapter in runs:
            loaded = load_pretrained(model.family, checkpoint)   # afresh: an adapter is injected into the model
            net = loaded.model if adapter is None else PeftModel.from_pretrained(loaded.model, adapter)
            for result in evaluate_targets(net, encoded, model.family, loaded.tokenizer, 64,
                                           calibration="batch"):
                totals[result.task] += sum(result.correct) / len(result.correct) / len(runs)
        print(f"{source:28s}" + "".join(f"{totals[name]:{width}.2f}" for name in questions))
