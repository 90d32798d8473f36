"""Multiple-choice and yes/no benchmarks (Medical, MMLU): prompts, token limits and scoring
exactly as the official FlowerTune evaluations do them.

An output counts as correct when its prediction equals the lower-cased gold answer. The
prediction is a cleaned-up short answer (`a`..`e`, `yes`, `no`) when the cleaning yields one,
and otherwise the whole lower-cased output, which almost never matches.

The official scorer also drops non-ASCII characters after the clean-up; the clean-up has by
then replaced every character outside `a-z0-9` with a space, so that step never changes a
prediction and is left out here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from .data import Record
from .engine import generate_answers

ANSWER_CUE = "The answer is:"
BOOLEAN = "boolean"
MCQ = "mcq"

SHORT_ANSWERS = ("a", "b", "c", "d", "e", "yes", "no")
SECTION_MARKER = "\n##"
# Folded in this order; only the first one the output contains is replaced.
BOOLEAN_FOLDS = (("yesyes", "yes"), ("nono", "no"), ("yesno", "yes"), ("noyes", "no"))


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


def official_max_new_tokens(tokenizer, golds: Sequence[str], batch_size: int) -> list[int]:
    """Per row, the official limit on new tokens.

    The official evaluation walks the rows in batches of `batch_size` and lets every row of a
    batch generate as many tokens as the first row's gold answer has (no special tokens).
    """
    limits = []
    for start in range(0, len(golds), batch_size):
        first_gold_tokens = tokenizer(golds[start], add_special_tokens=False)["input_ids"]
        limits += [len(first_gold_tokens)] * len(golds[start : start + batch_size])
    return limits


def answer_examples(
    model, tokenizer, examples: Sequence[Record], batch_size: int, description: str
) -> list[Record]:
    """The generation records: each example with the model's `output`.

    The official tool stores each output on every row with the same prompt, so rows that
    repeat a prompt all carry the output of the last of them; so do these records.
    """
    prompts = [example["prompt"] for example in examples]
    outputs = generate_answers(
        model,
        tokenizer,
        [chat_wrap(prompt) for prompt in prompts],
        official_max_new_tokens(tokenizer, [example["gold"] for example in examples], batch_size),
        batch_size,
        description,
    )
    last_output = dict(zip(prompts, outputs, strict=True))
    return [{**example, "output": last_output[example["prompt"]]} for example in examples]


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
