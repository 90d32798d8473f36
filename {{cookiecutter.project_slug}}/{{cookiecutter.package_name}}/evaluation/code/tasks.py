"""The four Code tasks as bigcode-evaluation-harness defines them: data, prompts, stop words,
post-processing, and the program a generation becomes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data import load_split

Row = Mapping[str, Any]

HUMANEVAL_STOP_WORDS = ("\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif", "\n```", "<file_sep>")
MBPP_STOP_WORDS = ("\nclass", "\nassert", '\n"""', "\nprint", "\nif", "\n<|/", "\n```")
FILE_SEPARATOR = "<file_sep>"  # the harness adds it to MultiPL-E's own stop tokens


class InvalidInput(ValueError):
    """Task data or a generations file that cannot be evaluated; the message says why."""


@dataclass(frozen=True)
class CodeTask:
    """One benchmark: where its rows are, how a row becomes a prompt and tests, how it runs."""

    name: str  # the --datasets name, the local copy's folder and the output files' name
    hub_id: str
    hub_config: str | None
    language: str  # how its programs run: "python", "javascript" or "cpp"
    max_length: int  # the official --max_length_generation: prompt and completion tokens
    columns: tuple[str, ...]  # the data columns it reads
    prompt: Callable[[Row], str]
    tests: Callable[[Row], str]  # what the harness appends to a generation (its "reference")
    stop_words: tuple[str, ...] | None  # None: the data's `stop_tokens` and <file_sep>
    revision: str | None = None  # the data set revision the harness pins


def humaneval_tests(row: Row) -> str:
    """The row's test code, then the call that runs it on the function."""
    return "\n" + row["test"] + "\n" + f"check({row['entry_point']})"


def mbpp_prompt(row: Row) -> str:
    """A docstring with the description and the first test (InCoder's MBPP prompt)."""
    return f'"""\n{row["text"]}\n{row["test_list"][0]}\n"""\n'


def mbpp_tests(row: Row) -> str:
    """The row's asserts, one per line."""
    return "\n".join(row["test_list"])


def stripped_prompt(row: Row) -> str:
    return row["prompt"].strip()


def multiple_tests(row: Row) -> str:
    return row["tests"]


MULTIPLE_COLUMNS = ("prompt", "tests", "stop_tokens")
# nuprl/MultiPL-E as the leaderboard's harness pins it: the fork of bigcode-evaluation-harness that
# Flower's Code evaluation installs (upstream's HEAD pins 28441b6 and has no multiple-cpp task).
MULTIPLE_REVISION = "ff5c146da05f10bc69b9ce393b77f381b3825d1b"

TASKS: dict[str, CodeTask] = {
    "humaneval": CodeTask(
        "humaneval", "openai/openai_humaneval", None, "python", 1024,
        ("prompt", "test", "entry_point"), stripped_prompt, humaneval_tests, HUMANEVAL_STOP_WORDS,
    ),
    "mbpp": CodeTask(
        "mbpp", "google-research-datasets/mbpp", "full", "python", 2048,
        ("text", "test_list"), mbpp_prompt, mbpp_tests, MBPP_STOP_WORDS,
    ),
    "multiple-js": CodeTask(
        "multiple-js", "nuprl/MultiPL-E", "humaneval-js", "javascript", 1024,
        MULTIPLE_COLUMNS, stripped_prompt, multiple_tests, None, MULTIPLE_REVISION,
    ),
    "multiple-cpp": CodeTask(
        "multiple-cpp", "nuprl/MultiPL-E", "humaneval-cpp", "cpp", 1024,
        MULTIPLE_COLUMNS, stripped_prompt, multiple_tests, None, MULTIPLE_REVISION,
    ),
}


@dataclass(frozen=True)
class Problems:
    """A task's problems in data set order, and the words that end a completion."""

    prompts: list[str]
    tests: list[str]
    stop_words: list[str]


def load_problems(task: CodeTask, data_dir: Path | None) -> Problems:
    """The task's test split, from the hub or `data_dir/<task>/test.{jsonl,json,parquet}`.

    MultiPL-E's stop words are the first row's `stop_tokens`, as the harness takes them.
    """
    rows = load_split(task.hub_id, task.hub_config, "test", data_dir, task.name, task.revision)
    missing = [column for column in task.columns if column not in rows.column_names]
    if missing:
        raise InvalidInput(
            f"{task.name}: the data has no column {', '.join(missing)} (it has "
            f"{', '.join(rows.column_names)}); the task reads {', '.join(task.columns)}"
        )
    if len(rows) == 0:
        raise InvalidInput(f"{task.name}: the data has no rows")
    if task.stop_words is None:
        stop_words = [*rows[0]["stop_tokens"], FILE_SEPARATOR]
    else:
        stop_words = list(task.stop_words)
    return Problems([task.prompt(row) for row in rows], [task.tests(row) for row in rows], stop_words)


def stop_at_stop_word(text: str, stop_words: list[str]) -> str:
    """`text` up to the first occurrence of any stop word."""
    end = min((index for word in stop_words if (index := text.find(word)) != -1), default=len(text))
    return text[:end]


def postprocess(prompt: str, completion: str, stop_words: list[str]) -> str:
    """The harness's saved generation: the prompt, then the completion cut at a stop word."""
    return prompt + stop_at_stop_word(completion, stop_words)


def program(generation: str, tests: str) -> str:
    """What runs: the generation, a newline, then the task's tests."""
    return generation + "\n" + tests
