"""Medical evaluation: PubMedQA, MedMCQA, MedQA and CareQA, as the official tool asks and scores.

Prompts follow the official FlowerTune Medical evaluation, which uses the Meditron
evaluation instructions; their exact wording decides whether scores are comparable.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from . import text_tasks
from .data import load_split, read_generations
from .multiple_choice import BOOLEAN, MCQ, accuracy, answer_examples, build_prompt, mcq_body, option_letter
from .text_tasks import DatasetTasks, Task, add_quantization_argument

# The Meditron evaluation instructions, worded exactly as the official FlowerTune evaluation
# uses them (including its "realworld", without a hyphen).
PUBMEDQA_INSTRUCTION = (
    "As an expert doctor in clinical science and medical knowledge, can you tell me if the "
    "following statement is correct? Answer yes, no, or maybe."
)
MEDQA_INSTRUCTION = (
    "You are a medical doctor taking the US Medical Licensing Examination. You need to "
    "demonstrate your understanding of basic and clinical science, medical knowledge, and "
    "mechanisms underlying health, disease, patient care, and modes of therapy. Show your "
    "ability to apply the knowledge essential for medical practice. For the following "
    "multiple-choice question, select one correct answer from A to E. Base your answer on the "
    "current and standard practices referenced in medical guidelines."
)
ENTRANCE_EXAM_INSTRUCTION = (  # MedMCQA and CareQA
    "You are a medical doctor answering realworld medical entrance exam questions. Based on "
    "your understanding of basic and clinical science, medical knowledge, and mechanisms "
    "underlying health, disease, patient care, and modes of therapy, answer the following "
    "multiple-choice question. Select one correct answer from A to D. Base your answer on the "
    "current and standard practices referenced in medical guidelines."
)

Row = Mapping[str, Any]


def pubmedqa_example(row: Row) -> tuple[str, str]:
    """PubMedQA (bigbio source schema): contexts then question; gold yes, no or maybe."""
    body = "\n".join(row["CONTEXTS"]) + "\n" + row["QUESTION"]
    return build_prompt(PUBMEDQA_INSTRUCTION, body), row["final_decision"]


def medmcqa_example(row: Row) -> tuple[str, str]:
    """MedMCQA: options `opa`..`opd`, gold index `cop` from 0."""
    options = [row["opa"], row["opb"], row["opc"], row["opd"]]
    body = mcq_body(row["question"], options)
    return build_prompt(ENTRANCE_EXAM_INSTRUCTION, body), option_letter(int(row["cop"]), 4)


def medqa_example(row: Row) -> tuple[str, str]:
    """MedQA (bigbio source schema): options `{key, value}`; gold is the answer's key."""
    options = row["options"]
    body = mcq_body(row["question"], [option["value"] for option in options])
    gold = next((option["key"] for option in options if option["value"] == row["answer"]), None)
    if gold is None:
        raise ValueError(f"MedQA answer {row['answer']!r} is none of the options")
    return build_prompt(MEDQA_INSTRUCTION, body), gold


def careqa_example(row: Row) -> tuple[str, str]:
    """CareQA: options `op1`..`op4`, gold index `cop` from 1."""
    options = [row["op1"], row["op2"], row["op3"], row["op4"]]
    body = mcq_body(row["question"], options)
    return build_prompt(ENTRANCE_EXAM_INSTRUCTION, body), option_letter(int(row["cop"]) - 1, 4)


@dataclass(frozen=True)
class Benchmark:
    """Where a benchmark's evaluated split lives, and how its rows are asked and scored."""

    hub_id: str
    hub_config: str | None
    split: str
    answer_type: str
    example: Callable[[Row], tuple[str, str]]


BENCHMARKS: dict[str, Benchmark] = {
    "pubmedqa": Benchmark(
        "bigbio/pubmed_qa", "pubmed_qa_labeled_fold0_source", "test", BOOLEAN, pubmedqa_example
    ),
    "medmcqa": Benchmark("medmcqa", None, "validation", MCQ, medmcqa_example),
    "medqa": Benchmark("bigbio/med_qa", "med_qa_en_4options_source", "test", MCQ, medqa_example),
    "careqa": Benchmark("HPAI-BSC/CareQA", "CareQA_en", "test", MCQ, careqa_example),
}

DATASETS = tuple(BENCHMARKS)
# what --data-dir holds: <dir>/<file>.{jsonl,json,parquet}
DATA_FILES = tuple(f"{name}/{benchmark.split}" for name, benchmark in BENCHMARKS.items())
LEADERBOARD_TASKS = DATASETS  # averaged by the leaderboard, in the order of its columns


def load_examples(name: str, data_dir: Path | None) -> list[dict[str, str]]:
    """Prompt (before the chat wrapping) and gold answer of every row of a benchmark."""
    benchmark = BENCHMARKS[name]
    rows = load_split(benchmark.hub_id, benchmark.hub_config, benchmark.split, data_dir, name)
    examples = []
    for row in rows:
        prompt, gold = benchmark.example(row)
        examples.append({"prompt": prompt, "gold": gold})
    return examples


def task(name: str) -> Task:
    """One benchmark as a scored task."""
    return Task(
        name=name,
        load_examples=partial(load_examples, name),
        answer=answer_examples,
        score=partial(accuracy, answer_type=BENCHMARKS[name].answer_type),
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The Medical evaluation's own flags."""
    add_quantization_argument(parser)


# What `eval`, `sweep` and `submit` call: `--datasets` name the tasks.
_commands = DatasetTasks(DATASETS, task)
task_names, evaluate, read_scores = _commands.task_names, _commands.evaluate, _commands.read_scores
adapter_models = text_tasks.adapter_models  # the base model once, each adapter in turn


def score_generations(path: Path, dataset: str, args: argparse.Namespace) -> str:
    """Re-score a saved generation file of one benchmark."""
    return f"Accuracy: {task(dataset).score(read_generations(path))}"
