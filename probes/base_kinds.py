"""Diagnostic: accuracy of cached embedded base models on held-out questions of the base stage's own kinds.

Tells whether a base stage learned its generic kinds at all (a kind at chance cannot carry over to any task).
The held-out questions come from another data seed than the base stage's; scoring is the cells' (option
log-likelihood, no calibration), with the family and answer prefix of conf/model/<name>.yaml (cached bases are
named <model name>-<key>).

    python -m probes.base_kinds outputs/.cache/models/qwen-*[0-9a-f] [--per-kind 200] [--seed 99]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from omegaconf import OmegaConf

from transfer.data.blink import read_split
from transfer.embedded.suite.generic import GENERIC_KINDS, generate_generic
from transfer.encode import encode_questions
from transfer.evaluate import evaluate_targets
from transfer.models.families import load_pretrained

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path, help="cached base model folders (<model name>-<key>)")
    parser.add_argument("--per-kind", type=int, default=200, help="held-out questions per kind")
    parser.add_argument("--seed", type=int, default=99, help="data seed of the held-out questions")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        generate_generic(root, seed=args.seed, size_per_kind=args.per_kind)
        questions = {kind: read_split(root, kind, "train") for kind in GENERIC_KINDS}
    for checkpoint in args.checkpoints:
        model = OmegaConf.load(ROOT / "conf" / "model" / f"{checkpoint.name.rsplit('-', 1)[0]}.yaml")
        loaded = load_pretrained(model.family, checkpoint)
        encoded = {kind: encode_questions(loaded.processor, model.family, model.answer_prefix, qs)
                   for kind, qs in questions.items()}
        results = evaluate_targets(loaded.model, encoded, model.family, loaded.tokenizer, 32)
        print(checkpoint.name, "  ".join(f"{r.task.removeprefix('Base_')} {sum(r.correct) / len(r.correct):.2f}"
                                         for r in results))


if __name__ == "__main__":
    main()
