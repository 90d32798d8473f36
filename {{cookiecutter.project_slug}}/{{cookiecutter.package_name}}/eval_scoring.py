"""Scoring exactly as the official FlowerTune Medical evaluation scores generations.

An output counts as correct when its prediction equals the lower-cased gold answer. The
prediction is a cleaned-up short answer (`a`..`e`, `yes`, `no`) when the cleaning yields one,
and otherwise the whole lower-cased output, which almost never matches.

The official scorer also drops non-ASCII characters after the clean-up; the clean-up has by
then replaced every character outside `a-z0-9` with a space, so that step never changes a
prediction and is left out here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from .eval_benchmarks import BOOLEAN

SHORT_ANSWERS = ("a", "b", "c", "d", "e", "yes", "no")
SECTION_MARKER = "\n##"
# Folded in this order; only the first one the output contains is replaced.
BOOLEAN_FOLDS = (("yesyes", "yes"), ("nono", "no"), ("yesno", "yes"), ("noyes", "no"))


def fold_boolean(text: str) -> str:
    """Replace the first of `yesyes`, `nono`, `yesno`, `noyes` found (every occurrence)."""
    for repeated, answer in BOOLEAN_FOLDS:
        if repeated in text:
            return text.replace(repeated, answer)
    return text


def prediction(output: str, answer_type: str) -> str:
    """What the official scorer compares with the lower-cased gold answer."""
    output = output.lower()
    text = output
    if SECTION_MARKER in text:
        text = text.split(SECTION_MARKER)[1].split("\n")[0].strip()
    text = re.sub(r"[^a-zA-Z0-9]", " ", text).strip()
    text = re.sub(" +", " ", text)
    text = fold_boolean(text) if answer_type == BOOLEAN else text[:1]
    return text if text in SHORT_ANSWERS else output


def is_correct(output: str, gold: str, answer_type: str) -> bool:
    """Whether a generation answers its row correctly."""
    return prediction(output, answer_type) == gold.lower()


def accuracy(records: Iterable[Mapping[str, str]], answer_type: str) -> float:
    """Share of records (with `output` and `gold`) answered correctly."""
    outcomes = [is_correct(record["output"], record["gold"], answer_type) for record in records]
    if not outcomes:
        raise ValueError("there are no generations to score")
    return sum(outcomes) / len(outcomes)
