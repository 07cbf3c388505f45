"""Choice extraction from generated answers: only the question's own options, the last declaration wins."""
import pytest

from transfer.answers import extract_choice

TWO = ["the second image", "the third image"]
FOUR = ["Point A", "Point B", "Point C", "Point D"]
REFLECTANCE = ["A is darker", "B is darker", "About the same"]


@pytest.mark.parametrize("text, choices, expected", [
    ("B", TWO, 1),
    ("(A)", TWO, 0),
    ("B.", TWO, 1),
    ("**C**", FOUR, 2),
    ("The correct answer is (B)", TWO, 1),            # lmms-eval's start-anchored regex reads this as "T"
    ("The answer is B, not A.", TWO, 1),
    ("I first thought (A), but the answer is (B).", TWO, 1),
    ("Answer: D", FOUR, 3),
    ("The answer is (A). On reflection, the answer is (C).", FOUR, 2),   # the last declared answer wins
    ("(B) the third image", TWO, 1),
    ("C. It matches the reference.", FOUR, 2),
    ("Looking at both, (A) fits.", TWO, 0),
    ("the third image", TWO, 1),
    ("Point C is the match", FOUR, 2),
    ("A is darker", REFLECTANCE, 0),
    ("about the same", REFLECTANCE, 2),
])
def test_declared_choices_are_read(text, choices, expected):
    assert extract_choice(text, choices) == expected


@pytest.mark.parametrize("text, choices", [
    ("E", FOUR),                                      # not one of this question's letters
    ("The answer is (C)", TWO),                       # C is not an option of a 2-option question
    ("(A) the second image (B) the third image", TWO),   # an echo of the options declares nothing
    ("a cat sits on the mat", FOUR),                  # lower-case "a" is a word, not option A
    ("I cannot tell.", TWO),
    ("", TWO),
    ("the second image or the third image", TWO),     # two options named: ambiguous
])
def test_undeclared_or_ambiguous_answers_are_unparsed(text, choices):
    assert extract_choice(text, choices) is None
