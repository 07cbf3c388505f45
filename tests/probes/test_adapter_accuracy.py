"""probes/adapter_accuracy.py: finds a sweep's adapters, and scores the base model and each source (the mean over
its seeds' adapters) on question sets that are not the sweep's own, with real PEFT adapters on a tiny model."""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import torch

from probes.adapter_accuracy import adapters, print_accuracy
from tests.helpers import colour_questions
from transfer.models.families import load_pretrained
from transfer.spec import LoraSpec
from transfer.train import apply_lora

LORA = LoraSpec(r=4, alpha=8.0, dropout=0.0, trainable_modules=[],
                target=r".*(language_model|text_model)\.layers\.\d+\.self_attn\.(q_proj|v_proj)")


def _adapter(checkpoint: str, folder: Path, scale: float | None = None) -> None:
    """A LoRA adapter as a finetune saves it: fresh (B = 0, the base model's function) or with B set to `scale`."""
    model = apply_lora(load_pretrained("qwen", checkpoint).model, LORA)
    if scale is not None:
        with torch.no_grad():
            for name, weight in model.named_parameters():
                if "lora_B" in name:
                    weight.fill_(scale)
    model.save_pretrained(folder)


def test_adapters_are_found_per_seed_and_a_missing_source_is_named(tmp_path: Path) -> None:
    for seed in (1, 0):
        (tmp_path / "cells" / "qwen" / "Counting" / f"seed={seed}" / "adapter").mkdir(parents=True)
    assert adapters(tmp_path, "qwen", "none") == [None]
    assert [p.parent.name for p in adapters(tmp_path, "qwen", "Counting")] == ["seed=0", "seed=1"]
    with pytest.raises(FileNotFoundError, match="cells/qwen/Jigsaw"):
        adapters(tmp_path, "qwen", "Jigsaw")


def test_each_source_is_its_adapters_mean_accuracy_beside_the_base(tiny_checkpoints, tmp_path, capsys) -> None:
    checkpoint = tiny_checkpoints["qwen"]
    cells = tmp_path / "cells" / "qwen"
    (cells / "none" / "seed=0").mkdir(parents=True)
    pl.DataFrame({"checkpoint": [checkpoint]}).write_parquet(cells / "none" / "seed=0" / "scores.parquet")
    for seed in (0, 1):
        _adapter(checkpoint, cells / "Counting" / f"seed={seed}" / "adapter")   # the base model's function
    _adapter(checkpoint, cells / "Jigsaw" / "seed=0" / "adapter", scale=5.0)     # far from it
    sets = {"two colours": colour_questions(24, n_choices=2, seed=1),
            "four colours": colour_questions(24, n_choices=4, seed=2)}
    print_accuracy(tmp_path, "qwen", sets, ["Counting", "Jigsaw"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"qwen, base {checkpoint}") and lines[1].split() == ["source", "two", "colours",
                                                                                    "four", "colours"]
    rows = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in lines[2:]}
    assert list(rows) == ["none", "Counting", "Jigsaw"]
    assert all(0.0 <= v <= 1.0 for values in rows.values() for v in values)
    assert rows["Counting"] == rows["none"]   # two seeds' adapters, each the base model's function: their mean
    assert rows["Jigsaw"] != rows["none"]     # the adapter is loaded and changes the answers
