"""General NLP evaluation: MMLU by category, as the official FlowerTune tool asks and scores.

Each category (STEM, social sciences, humanities) is one task over the test split of every
`lukaemon/mmlu` subject in it, in the official order; rows are asked as multiple-choice
questions with the same prompt, wrapping, token limits and scoring as Medical's.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

from . import comma_list, text_tasks
from .data import Record, load_split, read_generations
from .multiple_choice import MCQ, accuracy, answer_examples, build_prompt, mcq_body
from .text_tasks import Loaded, Task, add_quantization_argument, evaluate_tasks
from .text_tasks import read_scores as text_read_scores

MMLU_INSTRUCTION = "Answer the following multiple choice question."
MMLU_HUB_ID = "lukaemon/mmlu"
# The official MMLU_CATEGORY table: the subjects of each category, in its order.
MMLU_CATEGORIES: dict[str, tuple[str, ...]] = {
    "stem": (
        "abstract_algebra", "anatomy", "astronomy", "college_biology", "college_chemistry",
        "college_computer_science", "college_mathematics", "college_physics", "computer_security",
        "conceptual_physics", "electrical_engineering", "elementary_mathematics",
        "high_school_biology", "high_school_chemistry", "high_school_computer_science",
        "high_school_mathematics", "high_school_physics", "high_school_statistics",
        "machine_learning",
    ),
    "social_sciences": (
        "econometrics", "high_school_geography", "high_school_government_and_politics",
        "high_school_macroeconomics", "high_school_microeconomics", "high_school_psychology",
        "human_sexuality", "professional_psychology", "public_relations", "security_studies",
        "sociology", "us_foreign_policy",
    ),
    "humanities": (
        "formal_logic", "high_school_european_history", "high_school_us_history",
        "high_school_world_history", "international_law", "jurisprudence", "logical_fallacies",
        "moral_disputes", "moral_scenarios", "philosophy", "prehistory", "professional_law",
        "world_religions",
    ),
    "other": (
        "business_ethics", "clinical_knowledge", "college_medicine", "global_facts", "human_aging",
        "management", "marketing", "medical_genetics", "miscellaneous", "nutrition",
        "professional_accounting", "professional_medicine", "virology",
    ),
}
LEADERBOARD_CATEGORIES = ("stem", "social_sciences", "humanities")


def task_name(category: str) -> str:
    """A category's task, as its official result files name it."""
    return f"mmlu_{category}"


# averaged by the leaderboard, in the order of its columns
LEADERBOARD_TASKS = tuple(task_name(category) for category in LEADERBOARD_CATEGORIES)
DATASETS = ("mmlu",)
DATA_FILES = ("mmlu/<subject>/test",)  # what --data-dir holds: <dir>/<file>.{jsonl,json,parquet}


def mmlu_example(row: Mapping[str, Any], subject: str) -> Record:
    """An MMLU row (`input`, options `A`..`D`, gold letter `target`) as a prompt and its gold."""
    body = mcq_body(row["input"], [row["A"], row["B"], row["C"], row["D"]])
    return {"prompt": build_prompt(MMLU_INSTRUCTION, body), "gold": row["target"], "subset": subject}


def category_subjects(category: str, data_dir: Path | None) -> tuple[str, ...]:
    """The category's subjects to read: all of them from the hub; those a local copy holds.

    A local copy may hold a few subjects only (named in a warning); none at all is an error.
    """
    subjects = MMLU_CATEGORIES[category]
    if data_dir is None:
        return subjects
    present = tuple(subject for subject in subjects if (Path(data_dir) / "mmlu" / subject).is_dir())
    if not present:
        raise FileNotFoundError(
            f"--data-dir: no subject of MMLU {category} under {Path(data_dir) / 'mmlu'} "
            f"(looked for {', '.join(subjects)})"
        )
    if missing := [subject for subject in subjects if subject not in present]:
        print(f"warning: --data-dir holds {len(present)} of the {len(subjects)} subjects of MMLU "
              f"{category}; missing: {', '.join(missing)}", file=sys.stderr)
    return present


def load_category(category: str, data_dir: Path | None) -> list[Record]:
    """Every row of a category: its subjects' test splits, one after another."""
    return [
        mmlu_example(row, subject)
        for subject in category_subjects(category, data_dir)
        for row in load_split(MMLU_HUB_ID, subject, "test", data_dir, f"mmlu/{subject}")
    ]


def category_task(category: str) -> Task:
    """One category as a scored task, named as its official files are (`mmlu_<category>`)."""
    return Task(
        name=task_name(category),
        load_examples=partial(load_category, category),
        answer=answer_examples,
        score=partial(accuracy, answer_type=MCQ),
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The General NLP evaluation's own flags."""
    add_quantization_argument(parser)
    parser.add_argument(
        "--category", type=comma_list(tuple(MMLU_CATEGORIES)), default=list(LEADERBOARD_CATEGORIES),
        help=f"comma list of MMLU categories (default: the leaderboard's "
             f"{','.join(LEADERBOARD_CATEGORIES)}; also: other)",
    )


def task_names(args: argparse.Namespace) -> list[str]:
    """The tasks `evaluate` runs for these flags (they name its result files)."""
    return [task_name(category) for category in args.category]


def evaluate(args: argparse.Namespace, loaded: Loaded | None = None) -> dict[str, float]:
    """Answer, score and record every chosen category."""
    return evaluate_tasks(args, [category_task(category) for category in args.category], loaded)


def read_scores(output_dir: Path, run_name: str) -> dict[str, float]:
    """The accuracies `evaluate` wrote for `run_name`, of the categories that have a file."""
    return text_read_scores(output_dir, run_name, [task_name(category) for category in MMLU_CATEGORIES])


adapter_models = text_tasks.adapter_models  # the base model once, each adapter in turn


def score_generations(path: Path, dataset: str, args: argparse.Namespace) -> str:
    """Re-score a saved generation file of one MMLU category."""
    return f"Accuracy: {accuracy(read_generations(path), MCQ)}"
