"""The challenge's training data: federated partitions and prompt/completion examples."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import numpy as np
from datasets import Dataset
from flwr_datasets import FederatedDataset
from flwr_datasets.partitioner import IidPartitioner

ALPACA_PREAMBLE = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request."
)
RESPONSE_MARKER = "### Response:"

Row = Mapping[str, Any]


@lru_cache(maxsize=4)
def federated_dataset(dataset_name: str, num_partitions: int) -> FederatedDataset:
    """One IID-partitioned dataset per process (a hub id or a local data directory)."""
    return FederatedDataset(
        dataset=dataset_name,
        partitioners={"train": IidPartitioner(num_partitions=num_partitions)},
    )


def build_prompt(instruction: str, context: str = "") -> str:
    """Alpaca-style prompt; the model learns to write what follows the marker."""
    context_part = f"### Input:\n{context}\n" if context else ""
    return f"{ALPACA_PREAMBLE}\n### Instruction:\n{instruction}\n{context_part}{RESPONSE_MARKER}"


def text(row: Row, column: str) -> str:
    """A text cell, empty when missing or null."""
    value = row.get(column)
    return "" if value is None else str(value)


def medical_instruction(row: Row) -> tuple[str, str]:
    """Medical: the flashcard's `input` is the instruction."""
    return text(row, "input"), ""


def general_nlp_instruction(row: Row) -> tuple[str, str]:
    """General NLP: `instruction`, with the row's `input` as its context when there is one."""
    return text(row, "instruction"), text(row, "input").strip()


def joined_instruction(row: Row) -> tuple[str, str]:
    """Finance and Code: `instruction` and `input` joined by a space, as the official apps do."""
    return f"{text(row, 'instruction')} {text(row, 'input')}", ""


# challenge -> (columns the data must have, row -> (instruction, context))
REFORMATS: dict[str, tuple[tuple[str, ...], Callable[[Row], tuple[str, str]]]] = {
    "medical": (("input", "output"), medical_instruction),
    "general-nlp": (("instruction", "output"), general_nlp_instruction),
    "finance": (("instruction", "input", "output"), joined_instruction),
    "code": (("instruction", "input", "output"), joined_instruction),
}


def check_columns(dataset: Dataset, challenge: str) -> None:
    """Raise `ValueError` naming the columns the challenge needs that the data lacks."""
    required = REFORMATS[challenge][0]
    missing = [column for column in required if column not in dataset.column_names]
    if missing:
        raise ValueError(
            f"static.dataset.name: the data lacks column(s) {', '.join(missing)} "
            f"(it has {', '.join(dataset.column_names)}); the {challenge} challenge needs "
            f"{', '.join(required)}"
        )


def to_prompt_completion(partition: Dataset, challenge: str) -> Dataset:
    """The challenge's reformat: an Alpaca prompt and the `output` column as the completion."""
    check_columns(partition, challenge)
    instruction_of = REFORMATS[challenge][1]

    def example(row: Row) -> dict[str, str]:
        return {"prompt": build_prompt(*instruction_of(row)), "completion": " " + text(row, "output")}

    return partition.map(example, remove_columns=partition.column_names)


def keep_responses_within(examples: Dataset, tokenizer, max_length: int) -> Dataset:
    """The examples, each fitting in `max_length` tokens with its response kept.

    An example that fits is unchanged. A longer one loses the start of its prompt: cut at the
    end instead (TRL's truncation), it would lose its response and leave nothing to learn.
    """

    def fit(example: dict[str, str]) -> dict[str, str]:
        # the tokens of prompt and completion together, and the end-of-sequence token TRL appends
        total = len(tokenizer(example["prompt"] + example["completion"])["input_ids"]) + 1
        if total <= max_length:
            return example
        prompt_ids = tokenizer(example["prompt"], add_special_tokens=False)["input_ids"]
        kept = prompt_ids[min(total - max_length, len(prompt_ids)) :]
        return {"prompt": tokenizer.decode(kept), "completion": example["completion"]}

    return examples.map(fit)


def load_partition(dataset_name: str, challenge: str, partition_id: int, num_partitions: int) -> Dataset:
    """The prompt/completion examples of one client's partition."""
    try:
        partition = federated_dataset(dataset_name, num_partitions).load_partition(partition_id, "train")
    except IndexError:  # fewer rows than partitions: this one got none
        partition = None
    if partition is None or len(partition) == 0:
        raise ValueError(
            f"partition {partition_id} of {num_partitions} is empty: {dataset_name} has too few "
            f"rows for {num_partitions} SuperNodes"
        )
    return to_prompt_completion(partition, challenge)


def round_example_order(seed: int, server_round: int, partition_id: int, n: int) -> np.ndarray:
    """The order in which a node trains on its `n` examples in a round: a pure function of
    (seed, round, partition), so a resumed run sees what an uninterrupted one would have seen.
    Pass round 0 for one fixed order every round (`train.dynamic-data-seed = false`)."""
    return np.random.default_rng([seed, server_round, partition_id]).permutation(n)


def validation_rows(seed: int, partition_id: int, n: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """A fixed split of a partition's rows: (training rows, held-out validation rows), each sorted."""
    if n < 2:
        raise ValueError(f"partition {partition_id} has {n} row(s): too few to hold out validation rows")
    held_out = min(n - 1, max(1, round(fraction * n)))
    shuffled = np.random.default_rng([seed, partition_id, n]).permutation(n)
    return np.sort(shuffled[held_out:]), np.sort(shuffled[:held_out])
