"""BLINK's prompt style: the question, then "Select from the following choices." and lettered options."""
from __future__ import annotations

from transfer.data.question import LETTERS


def format_prompt(question: str, choices: list[str]) -> str:
    options = "\n".join(f"({LETTERS[i]}) {c}" for i, c in enumerate(choices))
    return f"{question}\nSelect from the following choices.\n{options}"


def answer_label(index: int) -> str:
    """BLINK's answer string for an option index: 0 -> "(A)"."""
    return f"({LETTERS[index]})"
