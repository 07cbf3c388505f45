"""Diagnostic: is a skill tied to the question's wording? Scores a sweep's base model and source adapters on a
task's own validation images twice, in the task's wording and reworded into the pretraining wording of the
primitive the task rests on (`transfer.embedded.planted`), with the gold option that wording implies.

If the base answers the reworded question well but the task's own at chance, the base can read the primitive
off these very images and the skill does not fire under the task's wording. If a source adapter moves the two
wordings apart, what it learned is bound to the wording too. Scoring is the cells' (option log-likelihood,
batch calibration); adapters come from `outputs/<sweep>/cells/<model>/<source>/seed=*/adapter`.

    python -m probes.wording --sweep science --model qwen --data outputs/.cache/data/synthetic-<key> \
        --sources Relative_Depth Object_Localization
"""
from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

from probes.adapter_accuracy import ROOT, print_accuracy
from transfer.data.blink import read_split
from transfer.data.question import Question


@dataclasses.dataclass(frozen=True)
class Rewording:
    pattern: str       # regex on the prompt's question, replaced by `question`
    question: str      # the pretraining wording of the primitive (transfer/embedded/suite/generic.py)
    flip: bool         # whether the primitive picks the task's lure (a 2-option task: gold becomes 1 - gold)


# The mark-height primitive: Relative_Depth's nearer point is the lower one, Object_Localization's lure box the
# lower one (generators in transfer/embedded/suite/scenes.py and objects.py).
REWORDINGS = {
    "Relative_Depth": Rewording(r"Which point is closer to the camera\?",
                                "Which point is closer to the bottom of the image?", flip=False),
    "Object_Localization": Rewording(r"Two bounding boxes are drawn: (.*?)\. Which box .*?\?",
                                     r"Two boxes are drawn: \1. Which box is lower in the image?", flip=True),
}


def reworded(question: Question, rewording: Rewording) -> Question:
    """The question with its wording replaced; the options stay, the gold follows the primitive."""
    prompt, n = re.subn(rewording.pattern, rewording.question, question.prompt, count=1)
    if n != 1:
        raise ValueError(f"{question.idx}: the prompt does not match {rewording.pattern!r}: {question.prompt!r}")
    answer = 1 - question.answer if rewording.flip else question.answer
    return dataclasses.replace(question, prompt=prompt, answer=answer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", required=True, help="sweep name under outputs/")
    parser.add_argument("--model", required=True, help="model name (conf/model/<name>.yaml)")
    parser.add_argument("--data", required=True, type=Path, help="the synthetic suite folder the sweep used")
    parser.add_argument("--sources", nargs="*", default=[], help="source tasks whose adapters to score")
    parser.add_argument("--outputs", type=Path, default=ROOT / "outputs")
    args = parser.parse_args()
    questions = {}
    for task, rewording in REWORDINGS.items():
        own = read_split(args.data, task, "val")
        questions[f"{task} (own)"] = own
        questions[f"{task} (reworded)"] = [reworded(q, rewording) for q in own]
    print_accuracy(args.outputs / args.sweep, args.model, questions, args.sources)


if __name__ == "__main__":
    main()
