"""Medical flashcards: federated partitions and prompt/completion examples."""

from __future__ import annotations

from functools import lru_cache

from datasets import Dataset
from flwr_datasets import FederatedDataset
from flwr_datasets.partitioner import IidPartitioner

ALPACA_PREAMBLE = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request."
)
RESPONSE_MARKER = "### Response:"
REQUIRED_COLUMNS = ("input", "output")


@lru_cache(maxsize=4)
def federated_dataset(dataset_name: str, num_partitions: int) -> FederatedDataset:
    """One IID-partitioned dataset per process (a hub id or a local data directory)."""
    return FederatedDataset(
        dataset=dataset_name,
        partitioners={"train": IidPartitioner(num_partitions=num_partitions)},
    )


def build_prompt(instruction: str) -> str:
    """Alpaca-style prompt; the model learns to write what follows the marker."""
    return f"{ALPACA_PREAMBLE}\n### Instruction:\n{instruction}\n{RESPONSE_MARKER}"


def check_columns(dataset: Dataset) -> None:
    """Raise `ValueError` naming the flashcard columns the data lacks."""
    missing = [column for column in REQUIRED_COLUMNS if column not in dataset.column_names]
    if missing:
        raise ValueError(
            f"static.dataset.name: the data lacks column(s) {', '.join(missing)} "
            f"(it has {', '.join(dataset.column_names)}); flashcards need {', '.join(REQUIRED_COLUMNS)}"
        )


def to_prompt_completion(partition: Dataset) -> Dataset:
    """Medical reformat: `input` is the instruction, `output` the response."""
    check_columns(partition)
    return partition.map(
        lambda row: {"prompt": build_prompt(row["input"]), "completion": " " + row["output"]},
        remove_columns=partition.column_names,
    )


def load_partition(dataset_name: str, partition_id: int, num_partitions: int) -> Dataset:
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
    return to_prompt_completion(partition)
