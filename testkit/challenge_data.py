"""Training rows in the schemas of the challenges' data sets, written for these tests.

General NLP: flwrlabs/alpaca-gpt4 (`instruction`, `input`, `output`, `text`); Finance:
flwrlabs/fingpt-sentiment-train (`input`, `output`, `instruction`); Code:
flwrlabs/code-alpaca-20k (`instruction`, `input`, `output`). Medical: see `flashcards`.
No row is taken from any data set.
"""

from __future__ import annotations

import json
from pathlib import Path

from .flashcards import flashcard_rows

_TASKS = [
    ("Name three primary colours.", "", "Red, yellow and blue."),
    ("Rewrite the sentence in the past tense.", "She walks to the market.", "She walked to the market."),
    ("Give a synonym for the word.", "rapid", "Quick."),
    ("Summarise the text in one sentence.", "The river flooded the valley after a week of rain.",
     "Heavy rain made the river flood the valley."),
    ("Explain why the sky looks blue.", "", "Air scatters blue light more than red light."),
]
_SENTIMENTS = [
    ("Quarterly profit rose by a fifth on strong sales.", "positive"),
    ("The company cut its outlook and shares fell.", "negative"),
    ("The board will meet on Tuesday.", "neutral"),
    ("Revenue beat forecasts for the third year running.", "positive"),
    ("The lender reported a wider loss than expected.", "negative"),
]
_SENTIMENT_INSTRUCTION = (
    "What is the sentiment of this news? Please choose an answer from {negative/neutral/positive}."
)
_PROGRAMS = [
    ("Write a Python function that returns the square of a number.", "", "def square(x):\n    return x * x"),
    ("Write a function that reverses a string.", "text = 'abc'", "def reverse(text):\n    return text[::-1]"),
    ("Add the two numbers.", "a = 2, b = 3", "def add(a, b):\n    return a + b"),
    ("Return the largest item of a list.", "", "def largest(items):\n    return max(items)"),
]


def general_nlp_rows(count: int) -> list[dict[str, str]]:
    rows = []
    for index in range(count):
        instruction, context, output = _TASKS[index % len(_TASKS)]
        instruction = f"{instruction} (task {index})"
        text = f"### Instruction:\n{instruction}\n\n### Input:\n{context}\n\n### Response:\n{output}"
        rows.append({"instruction": instruction, "input": context, "output": output, "text": text})
    return rows


def finance_rows(count: int) -> list[dict[str, str]]:
    rows = []
    for index in range(count):
        sentence, label = _SENTIMENTS[index % len(_SENTIMENTS)]
        rows.append({"input": f"{sentence} (note {index})", "output": label,
                     "instruction": _SENTIMENT_INSTRUCTION})
    return rows


def code_rows(count: int) -> list[dict[str, str]]:
    rows = []
    for index in range(count):
        instruction, context, output = _PROGRAMS[index % len(_PROGRAMS)]
        rows.append({"instruction": f"{instruction} (exercise {index})", "input": context, "output": output})
    return rows


ROWS = {
    "medical": flashcard_rows,
    "general-nlp": general_nlp_rows,
    "finance": finance_rows,
    "code": code_rows,
}


def write_challenge_data(directory: Path | str, challenge: str, count: int = 40) -> Path:
    """Write a local data set folder (`train.jsonl`) of the challenge's schema."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "train.jsonl").open("w", encoding="utf-8") as handle:
        for row in ROWS[challenge](count):
            handle.write(json.dumps(row) + "\n")
    return directory
