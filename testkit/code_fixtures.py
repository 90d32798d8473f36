"""Local copies of the four Code tasks in the hub's columns, with problems written for the tests,
and programs known to be right or wrong for each.

`write_code_fixtures(root)` writes `root/<task>/test.jsonl` for humaneval, mbpp, multiple-js and
multiple-cpp (two problems each). `RIGHT` and `WRONG` hold, per task, one generation per problem
as the harness saves it: the prompt followed by a completion cut at a stop word.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

JS_STOP_TOKENS = ["\nfunction ", "\n/*", "\n//", "\nconsole.log"]
CPP_STOP_TOKENS = ["\n}"]

HUMANEVAL_ROWS = [
    {
        "task_id": "Fixture/0",
        "prompt": (
            "\n\ndef neighbour_sums(values: list) -> list:\n"
            '    """Sums of each value and the next one.\n'
            "    >>> neighbour_sums([1, 2, 4])\n    [3, 6]\n    \"\"\"\n"
        ),
        "canonical_solution": "    return [a + b for a, b in zip(values, values[1:])]\n",
        "test": (
            "def check(candidate):\n"
            "    assert candidate([1, 2, 4]) == [3, 6]\n"
            "    assert candidate([]) == []\n"
            "    assert candidate([7]) == []\n"
        ),
        "entry_point": "neighbour_sums",
    },
    {
        "task_id": "Fixture/1",
        "prompt": (
            "def count_vowels(word: str) -> int:\n"
            '    """How many of the letters are vowels (a, e, i, o, u, either case).\n'
            "    >>> count_vowels('Ocean')\n    3\n    \"\"\"\n"
        ),
        "canonical_solution": "    return sum(letter in 'aeiouAEIOU' for letter in word)\n",
        "test": (
            "def check(candidate):\n"
            "    assert candidate('Ocean') == 3\n"
            "    assert candidate('rhythm') == 0\n"
        ),
        "entry_point": "count_vowels",
    },
]

MBPP_ROWS = [
    {
        "task_id": 9001,
        "text": "Write a function to find the largest even number in a list, or None if there is none.",
        "code": (
            "def largest_even(values):\n  evens = [v for v in values if v % 2 == 0]\n"
            "  return max(evens) if evens else None"
        ),
        "test_list": [
            "assert largest_even([3, 8, 5, 6]) == 8",
            "assert largest_even([1, 3]) is None",
            "assert largest_even([-4, -2]) == -2",
        ],
        "test_setup_code": "",
        "challenge_test_list": [],
    },
    {
        "task_id": 9002,
        "text": "Write a function to reverse the order of the words in a sentence.",
        "code": "def reverse_words(sentence):\n  return ' '.join(sentence.split()[::-1])",
        "test_list": [
            "assert reverse_words('one two three') == 'three two one'",
            "assert reverse_words('solo') == 'solo'",
            "assert reverse_words('') == ''",
        ],
        "test_setup_code": "",
        "challenge_test_list": [],
    },
]

JS_ROWS = [
    {
        "name": "Fixture_0_neighbour_sums",
        "language": "js",
        "prompt": (
            "//Sums of each value and the next one.\n// >>> neighbour_sums([1, 2, 4])\n// [3, 6]\n"
            "function neighbour_sums(values){\n"
        ),
        "doctests": "transform",
        "original": "fixture",
        "prompt_terminology": "reworded",
        "tests": (
            "const assert = require('node:assert');\n\n\nfunction test() {\n"
            "  let candidate = neighbour_sums;\n"
            "  assert.deepEqual(candidate([1, 2, 4]),[3, 6]);\n"
            "  assert.deepEqual(candidate([]),[]);\n}\n\ntest();"
        ),
        "stop_tokens": JS_STOP_TOKENS,
    },
    {
        "name": "Fixture_1_count_vowels",
        "language": "js",
        "prompt": (
            "//How many of the letters are vowels (a, e, i, o, u, either case).\n"
            "// >>> count_vowels(\"Ocean\")\n// 3\nfunction count_vowels(word){\n"
        ),
        "doctests": "transform",
        "original": "fixture",
        "prompt_terminology": "reworded",
        "tests": (
            "const assert = require('node:assert');\n\n\nfunction test() {\n"
            "  let candidate = count_vowels;\n"
            "  assert.deepEqual(candidate(\"Ocean\"),3);\n"
            "  assert.deepEqual(candidate(\"rhythm\"),0);\n}\n\ntest();"
        ),
        "stop_tokens": JS_STOP_TOKENS,
    },
]

CPP_ROWS = [
    {
        "name": "Fixture_0_neighbour_sums",
        "language": "cpp",
        "prompt": (
            "#include<assert.h>\n#include<bits/stdc++.h>\n// Sums of each value and the next one.\n"
            "// >>> neighbour_sums((std::vector<long>({1, 2, 4})))\n// (std::vector<long>({3, 6}))\n"
            "std::vector<long> neighbour_sums(std::vector<long> values) {\n"
        ),
        "doctests": "transform",
        "original": "fixture",
        "prompt_terminology": "reworded",
        "tests": (
            "}\nint main() {\n    auto candidate = neighbour_sums;\n"
            "    assert(candidate((std::vector<long>({1, 2, 4}))) == (std::vector<long>({3, 6})));\n"
            "    assert(candidate((std::vector<long>())) == (std::vector<long>()));\n}\n"
        ),
        "stop_tokens": CPP_STOP_TOKENS,
    },
    {
        "name": "Fixture_1_count_vowels",
        "language": "cpp",
        "prompt": (
            "#include<assert.h>\n#include<bits/stdc++.h>\n"
            "// How many of the letters are vowels (a, e, i, o, u, either case).\n"
            "// >>> count_vowels((\"Ocean\"))\n// (3)\nlong count_vowels(std::string word) {\n"
        ),
        "doctests": "transform",
        "original": "fixture",
        "prompt_terminology": "reworded",
        "tests": (
            "}\nint main() {\n    auto candidate = count_vowels;\n"
            "    assert(candidate((\"Ocean\")) == (3));\n"
            "    assert(candidate((\"rhythm\")) == (0));\n}\n"
        ),
        "stop_tokens": CPP_STOP_TOKENS,
    },
]

ROWS = {"humaneval": HUMANEVAL_ROWS, "mbpp": MBPP_ROWS, "multiple-js": JS_ROWS, "multiple-cpp": CPP_ROWS}


def mbpp_prompt(row: dict) -> str:
    return f'"""\n{row["text"]}\n{row["test_list"][0]}\n"""\n'


# One right and one wrong generation per problem: prompt (as the task builds it) + completion.
RIGHT = {
    "humaneval": [
        [row["prompt"].strip() + "\n" + row["canonical_solution"]] for row in HUMANEVAL_ROWS
    ],
    "mbpp": [[mbpp_prompt(row) + row["code"]] for row in MBPP_ROWS],
    "multiple-js": [
        [JS_ROWS[0]["prompt"].strip() + "\n  return values.slice(1).map((v, i) => v + values[i]);\n}"],
        [JS_ROWS[1]["prompt"].strip()
         + "\n  return [...word].filter(c => 'aeiouAEIOU'.includes(c)).length;\n}"],
    ],
    "multiple-cpp": [
        [CPP_ROWS[0]["prompt"].strip() + "\n    std::vector<long> out;\n"
         "    for (size_t i = 0; i + 1 < values.size(); i++) out.push_back(values[i] + values[i + 1]);\n"
         "    return out;"],
        [CPP_ROWS[1]["prompt"].strip() + "\n    long n = 0;\n"
         "    for (char c : word) n += std::string(\"aeiouAEIOU\").find(c) != std::string::npos;\n"
         "    return n;"],
    ],
}
WRONG = {
    "humaneval": [
        [HUMANEVAL_ROWS[0]["prompt"].strip() + "\n    return [a - b for a, b in zip(values, values[1:])]\n"],
        [HUMANEVAL_ROWS[1]["prompt"].strip() + "\n    return len(word)\n"],
    ],
    "mbpp": [
        [mbpp_prompt(MBPP_ROWS[0]) + "def largest_even(values):\n  return max(values)"],
        [mbpp_prompt(MBPP_ROWS[1]) + "def reverse_words(sentence):\n  return sentence[::-1]"],
    ],
    "multiple-js": [
        [JS_ROWS[0]["prompt"].strip() + "\n  return values;\n}"],
        [JS_ROWS[1]["prompt"].strip() + "\n  return word.length;\n}"],
    ],
    "multiple-cpp": [
        [CPP_ROWS[0]["prompt"].strip() + "\n    return values;"],
        [CPP_ROWS[1]["prompt"].strip() + "\n    return word.size();"],
    ],
}


def write_code_fixtures(root: Path) -> Path:
    """Write `root/<task>/test.jsonl` for the four tasks; return `root`."""
    for task, rows in ROWS.items():
        folder = root / task
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "test.jsonl", "w", encoding="utf-8") as file:
            for row in rows:
                file.write(json.dumps(row) + "\n")
    return root


def write_generations(path: Path, generations: list[list[str]]) -> Path:
    """A generations file as the harness and the rendered evaluation save it."""
    path.write_text(json.dumps(generations), encoding="utf-8")
    return path


@contextmanager
def rendered_code_project(output_dir: Path) -> Iterator[tuple[ModuleType, ModuleType]]:
    """Render the Code challenge's project into `output_dir` and import it: its `eval` command
    and its `evaluation.code` package (importable while the context lasts)."""
    from testkit.render import render

    project = render(output_dir, challenge="code")
    package = project.name.replace("-", "_")
    sys.path.insert(0, str(project))
    try:
        yield (importlib.import_module(f"{package}.eval"),
               importlib.import_module(f"{package}.evaluation.code"))
    finally:
        sys.path.remove(str(project))
