"""The choice a generated answer declares, restricted to the question's own options (generation mode).

Rules, in order (valid letters are the question's, A.. for its n options; option texts are its choices):
1. the whole answer is one valid letter, bare or marked: `B`, `(B)`, `B.`, `B)`, `**B**`;
2. declared answers, e.g. "The correct answer is (B)", "Answer: B", "option B": the last declaration wins;
3. the answer starts with a marked valid letter and marks no other, e.g. "(B) the second image", "B. because";
4. exactly one valid letter in parentheses, e.g. "... so (B)";
5. exactly one option text, e.g. "the second image".
Anything else is unparsed (None) and scores as wrong; the share of unparsed answers is recorded per target.
A letter must be upper case: "a cat" never reads as option A.
"""
from __future__ import annotations

import re

from transfer.data.question import LETTERS

_MARKED = r"\*{0,2}\(?([A-Z])\)?\*{0,2}"
_WHOLE = re.compile(rf"\s*{_MARKED}[.:]?\s*")
_DECLARED = re.compile(rf"(?i:answer|option|choice)(?:\s+(?i:is|would be|should be))?\s*[:=\-]?\s*{_MARKED}"
                       r"(?![A-Za-z])")
_LEADING = re.compile(r"\s*\*{0,2}(?:\(([A-Z])\)|([A-Z])[.):])")
_PARENS = re.compile(r"\(([A-Z])\)")


def extract_choice(text: str, choices: list[str]) -> int | None:
    """The index of the option `text` declares, or None when it declares none of them unambiguously."""
    valid = LETTERS[: len(choices)]
    whole = _WHOLE.fullmatch(text)
    if whole and whole.group(1) in valid:
        return valid.index(whole.group(1))
    declared = [m.group(1) for m in _DECLARED.finditer(text) if m.group(1) in valid]
    if declared:
        return valid.index(declared[-1])
    in_parens = {m.group(1) for m in _PARENS.finditer(text) if m.group(1) in valid}
    leading = _LEADING.match(text)
    first = (leading.group(1) or leading.group(2)) if leading else ""
    if first and first in valid and in_parens <= {first}:
        return valid.index(first)
    if len(in_parens) == 1:
        return valid.index(in_parens.pop())
    named = [i for i, c in enumerate(choices) if c and _mentions(text, c)]
    return named[0] if len(named) == 1 else None


def _mentions(text: str, option: str) -> bool:
    """Whether `text` names `option` as a whole word (case-insensitive, except for one-letter options)."""
    flags = re.IGNORECASE if len(option) > 1 else 0
    return re.search(rf"(?<!\w){re.escape(option)}(?!\w)", text, flags) is not None
