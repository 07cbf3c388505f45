"""Which questions a cell trains and evaluates on: a BLINK-format folder (the real BLINK or the embedded suite),
with BLINK's val split carved into training and evaluation questions when there is no training data."""
from __future__ import annotations

from pathlib import Path

from transfer.data.blink import data_revision, holdout_split, read_split
from transfer.data.question import Question
from transfer.spec import DataSpec


class TaskData:
    """Train and eval questions per task of the BLINK-format folder `root`, as the `data` group says."""

    def __init__(self, data: DataSpec, root: Path):
        self.data, self.root = data, Path(root)
        self.train_root = Path(data.train_root) if data.train_root else None
        self._holdout: dict[str, tuple[list[Question], list[Question]]] = {}

    def _blink_holdout(self, task: str) -> tuple[list[Question], list[Question]]:
        """(train, eval) questions of one task's val split; read and split once per task."""
        if task not in self._holdout:
            self._holdout[task] = holdout_split(read_split(self.root, task, "val"),
                                                self.data.holdout_train_fraction, salt=task)
        return self._holdout[task]

    def train(self, task: str) -> list[Question]:
        if self.data.source == "synthetic":
            questions = read_split(self.root, task, "train")
        elif self.train_root is not None:
            questions = read_split(self.train_root, task, "train")
        else:
            questions = self._blink_holdout(task)[0]
        limit = self.data.train_limit
        return questions[:limit] if limit else questions

    def eval(self, task: str) -> list[Question]:
        if self.holdout:
            questions = self._blink_holdout(task)[1]
        else:
            questions = read_split(self.root, task, self.data.eval_split)
        limit = self.data.eval_limit
        return questions[:limit] if limit else questions

    def revision(self, task: str, role: str) -> str:
        """The data revision of the file a role ("train" or "eval") reads for `task` (transfer.data.blink)."""
        if role == "train" and self.train_root is not None:
            return data_revision(self.train_root, task, "train")
        split = "val" if self.holdout else ("train" if role == "train" else self.data.eval_split)
        return data_revision(self.root, task, split)

    @property
    def holdout(self) -> bool:
        """True when training questions are carved out of BLINK's val split (no separate train data)."""
        return self.data.source == "blink" and self.train_root is None
