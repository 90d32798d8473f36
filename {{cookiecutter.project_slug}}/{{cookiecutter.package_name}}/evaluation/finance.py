"""Finance evaluation: FPB, FiQA and TFNS sentiment, as the official FlowerTune tool asks and scores.

The official tool decodes every row greedily to 512 tokens in all (prompt and padding of its
batch included) and scores the text after the first `Answer: `. Here a row stops as soon as
nothing it could still write would change its score (the end of sequence, a second
`Answer: `, or `positive` already in its answer) and leaves its batch; the scores are the same.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import datasets

from . import text_tasks
from .data import Record, load_split, read_generations
from .engine import greedy_until_settled
from .text_tasks import DatasetTasks, Task, add_quantization_argument

ANSWER_MARKER = "Answer: "
MAX_LENGTH = 512  # the official `generate(max_length=512)`: prompt, padding and answer
TEST_FRACTION, SPLIT_SEED = 0.25, 42  # the official `train_test_split(0.25, seed=42)`
SENTIMENT_CHOICES = "Please choose an answer from {negative/neutral/positive}."
FPB_LABELS = {0: "negative", 1: "neutral", 2: "positive"}
TFNS_LABELS = {0: "negative", 1: "positive", 2: "neutral"}

Row = Mapping[str, Any]


def sentiment_instruction(kind: str) -> str:
    """The official instruction, about a `news` text or a `tweet`."""
    return f"What is the sentiment of this {kind}? {SENTIMENT_CHOICES}"


def finance_prompt(instruction: str, text: str) -> str:
    """`Instruction: ...`, `Input: ...` (when there is a text) and the `Answer: ` cue."""
    input_line = f"Input: {text}\n" if text else ""
    return f"Instruction: {instruction}\n{input_line}{ANSWER_MARKER}"


def fiqa_label(score: float) -> str:
    """FiQA's gold from `sentiment_score`: below -0.1 negative, below 0.1 neutral, else positive."""
    return "negative" if score < -0.1 else "neutral" if score < 0.1 else "positive"


def fpb_example(row: Row) -> Record:
    return {"prompt": finance_prompt(sentiment_instruction("news"), row["sentence"]),
            "gold": FPB_LABELS[int(row["label"])]}


def fiqa_example(row: Row) -> Record:
    kind = "tweet" if row["format"] == "post" else "news"
    return {"prompt": finance_prompt(sentiment_instruction(kind), row["sentence"]),
            "gold": fiqa_label(float(row["sentiment_score"]))}


def tfns_example(row: Row) -> Record:
    return {"prompt": finance_prompt(sentiment_instruction("tweet"), row["text"]),
            "gold": TFNS_LABELS[int(row["label"])]}


def official_test_part(rows: datasets.Dataset) -> datasets.Dataset:
    """The 25% that the official tool evaluates: `train_test_split(0.25, seed=42)["test"]`."""
    return rows.train_test_split(TEST_FRACTION, seed=SPLIT_SEED)["test"]


@dataclass(frozen=True)
class FinanceBenchmark:
    """Where a benchmark's rows live and how the official tool picks and asks them."""

    hub_id: str
    hub_config: str | None
    splits: tuple[str, ...]  # concatenated in this order
    take_test_part: bool
    example: Callable[[Row], Record]


BENCHMARKS: dict[str, FinanceBenchmark] = {
    "fpb": FinanceBenchmark(
        "takala/financial_phrasebank", "sentences_50agree", ("train",), True, fpb_example
    ),
    "fiqa": FinanceBenchmark("pauri32/fiqa-2018", None, ("train", "validation", "test"), True, fiqa_example),
    "tfns": FinanceBenchmark("zeroshot/twitter-financial-news-sentiment", None, ("validation",), False,
                             tfns_example),
}
DATASETS = tuple(BENCHMARKS)
LEADERBOARD_TASKS = DATASETS  # averaged by the leaderboard, in the order of its columns


def local_splits(name: str, splits: tuple[str, ...], data_dir: Path | None) -> tuple[str, ...]:
    """The splits to read: all from the hub; from a local copy, those it holds (the others are
    named in a warning; with none, the first one's loading error names the files looked for)."""
    if data_dir is None:
        return splits
    present = tuple(split for split in splits if any((Path(data_dir) / name).glob(f"{split}.*")))
    if present and len(present) < len(splits):
        missing = ", ".join(split for split in splits if split not in present)
        print(f"warning: --data-dir holds no {missing} split of {name}; using {', '.join(present)}",
              file=sys.stderr)
    return present or splits[:1]


def load_examples(name: str, data_dir: Path | None) -> list[Record]:
    """The rows the official tool evaluates, as prompts and gold labels."""
    benchmark = BENCHMARKS[name]
    rows = datasets.concatenate_datasets([
        load_split(benchmark.hub_id, benchmark.hub_config, split, data_dir, name)
        for split in local_splits(name, benchmark.splits, data_dir)
    ])
    if benchmark.take_test_part:
        rows = official_test_part(rows)
    return [benchmark.example(row) for row in rows]


def answer_of(decoded: str | None) -> str | None:
    """The official answer: the decoded text after the first `Answer: `, up to any next one."""
    parts = (decoded or "").split(ANSWER_MARKER)
    return parts[1] if len(parts) > 1 else None


def fold_sentiment(text: str | None) -> str:
    """positive if it says positive, else negative if it says negative, else neutral."""
    text = text or ""
    if "positive" in text or "Positive" in text:
        return "positive"
    if "negative" in text or "Negative" in text:
        return "negative"
    return "neutral"


def is_settled(decoded: str) -> bool:
    """Whether no text appended to `decoded` could change its folded answer."""
    return decoded.count(ANSWER_MARKER) >= 2 or fold_sentiment(answer_of(decoded)) == "positive"


def official_limits(token_rows: Sequence[Sequence[int]], batch_size: int) -> list[int]:
    """Per row, the new tokens the official tool allows: 512 less its batch's padded length.

    The official tool walks the rows in batches of `batch_size` in data set order and pads
    each batch to its longest prompt; `generate` makes at least one token.
    """
    limits = []
    for start in range(0, len(token_rows), batch_size):
        batch = token_rows[start : start + batch_size]
        longest = max(len(row) for row in batch)
        limits += [max(1, MAX_LENGTH - longest)] * len(batch)
    return limits


def answer_examples(
    model, tokenizer, examples: Sequence[Record], batch_size: int, description: str
) -> list[Record]:
    """The generation records: each example with the decoded text, its answer and both labels."""
    token_rows = tokenizer([example["prompt"] for example in examples])["input_ids"]

    def decoded(row: int, new_tokens: Sequence[int]) -> str:
        return tokenizer.decode([*token_rows[row], *new_tokens], skip_special_tokens=True)

    new_tokens = greedy_until_settled(
        model, tokenizer, token_rows, official_limits(token_rows, batch_size), batch_size,
        lambda row, tokens: is_settled(decoded(row, tokens)), description,
    )
    records = []
    for row, example in enumerate(examples):
        output = decoded(row, new_tokens[row])
        answer = answer_of(output)
        records.append({
            **example, "output": output, "answer": answer,
            "new_target": fold_sentiment(example["gold"]), "new_out": fold_sentiment(answer),
        })
    return records


def prediction(record: Record) -> str:
    """The folded answer of a record: ours (`output`, the decoded text) or the official's (`new_out`)."""
    if "output" in record:
        return fold_sentiment(answer_of(record["output"]))
    return fold_sentiment(record["new_out"])


def accuracy(records: Sequence[Record]) -> float:
    """Share of records whose folded answer equals their folded gold (`gold` or `new_target`)."""
    if not records:
        raise ValueError("there are no generations to score")
    golds = [
        fold_sentiment(record["gold"] if "gold" in record else record["new_target"]) for record in records
    ]
    return sum(prediction(record) == gold for record, gold in zip(records, golds, strict=True)) / len(records)


def task(name: str) -> Task:
    """One benchmark as a scored task."""
    return Task(name=name, load_examples=partial(load_examples, name), answer=answer_examples, score=accuracy)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The Finance evaluation's own flags."""
    add_quantization_argument(parser)


# What `eval`, `sweep` and `submit` call: `--datasets` name the tasks.
_commands = DatasetTasks(DATASETS, task)
task_names, evaluate, read_scores = _commands.task_names, _commands.evaluate, _commands.read_scores
adapter_models = text_tasks.adapter_models  # the base model once, each adapter in turn


def score_generations(path: Path, dataset: str, args: argparse.Namespace) -> str:
    """Re-score a saved generation file of one benchmark (ours or the official tool's)."""
    return f"Accuracy: {accuracy(read_generations(path))}"
