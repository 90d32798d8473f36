"""The four Medical benchmarks: where their rows live and how a row becomes a prompt.

Prompts follow the official FlowerTune Medical evaluation, which uses the Meditron
evaluation instructions; their exact wording decides whether scores are comparable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
ANSWER_CUE = "The answer is:"

BOOLEAN = "boolean"
MCQ = "mcq"

Row = Mapping[str, Any]


def mcq_body(question: str, options: Sequence[str]) -> str:
    """`Question: ...`, a blank line, `Options:` and one `A. ...` line per option."""
    if not question.endswith(("?", ".")):
        question += "?"
    lines = [f"{chr(ord('A') + index)}. {option}" for index, option in enumerate(options)]
    return f"Question: {question}\n\nOptions:\n" + "\n".join(lines)


def build_prompt(instruction: str, body: str) -> str:
    """The prompt saved with each generation: instruction, body, answer cue."""
    return f"{instruction}\n{body}\n{ANSWER_CUE}\n"


def chat_wrap(prompt: str) -> str:
    """The text the model continues: the prompt in question/answer turns."""
    return f"<|im_start|>question\n{prompt}<|im_end|>\n<|im_start|>answer\n"


def option_letter(index: int, count: int) -> str:
    """`A`, `B`, ... for a 0-based option index; an index out of range is a data error."""
    if not 0 <= index < count:
        raise ValueError(f"answer index {index} is not one of the {count} options")
    return chr(ord("A") + index)


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
