"""Benchmark rows from the hub or from local copies, and the generation files of a run."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets

DATA_FILE_TYPES = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}
# The hub's parquet export of a data set, for the ones that ship a loading script
# (bigbio/*, lukaemon/mmlu), which `datasets` 4 no longer runs.
PARQUET_EXPORT_REVISION = "refs/convert/parquet"

Record = dict[str, Any]
ACCURACY = re.compile(r"Accuracy:\s*([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)")


def load_from_hub(
    hub_id: str, hub_config: str | None, split: str, revision: str | None = None
) -> datasets.Dataset:
    """A split from the Hugging Face hub (from its parquet export for script-only data sets,
    which is of the newest revision: a warning says so when `revision` pins another)."""
    try:
        return datasets.load_dataset(hub_id, hub_config, split=split, revision=revision)
    except RuntimeError as error:
        if "Dataset scripts are no longer supported" not in str(error):
            raise
        if revision is not None:
            print(f"warning: {hub_id} at revision {revision} is a loading script, which datasets 4 no "
                  f"longer runs: reading the hub's parquet export ({PARQUET_EXPORT_REVISION}, of its newest "
                  "revision) instead", file=sys.stderr)
        return datasets.load_dataset(
            hub_id, revision=PARQUET_EXPORT_REVISION, data_dir=hub_config, split=split
        )


def load_from_dir(data_dir: Path, local_name: str, split: str) -> datasets.Dataset:
    """A split from a local copy: `<data_dir>/<local_name>/<split>.{jsonl,json,parquet}`."""
    candidates = [data_dir / local_name / f"{split}{suffix}" for suffix in DATA_FILE_TYPES]
    path = next((candidate for candidate in candidates if candidate.is_file()), None)
    if path is None:
        raise FileNotFoundError(
            f"--data-dir: none of {', '.join(str(candidate) for candidate in candidates)} exists"
        )
    return datasets.load_dataset(DATA_FILE_TYPES[path.suffix], data_files=str(path), split="train")


def load_split(
    hub_id: str, hub_config: str | None, split: str, data_dir: Path | None, local_name: str,
    revision: str | None = None,
) -> datasets.Dataset:
    """A benchmark split: from `data_dir/<local_name>/` when given, else from the hub (at
    `revision` when the official tool pins one)."""
    if data_dir is not None:
        return load_from_dir(Path(data_dir), local_name, split)
    return load_from_hub(hub_id, hub_config, split, revision)


def read_generations(path: Path) -> list[Record]:
    """Generation records from a JSON array (the official tools') or JSON lines (ours)."""
    text = Path(path).read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def read_accuracy(path: Path) -> float:
    """The accuracy of an `acc_<name>_<run>.txt` file (`Accuracy: <x>. `, ours or the official tool's)."""
    text = Path(path).read_text(encoding="utf-8")
    match = ACCURACY.search(text)
    if match is None:
        raise ValueError(f"{path}: no 'Accuracy: <number>' in {text[:60]!r}")
    return float(match.group(1))


def write_results(
    output_dir: Path, name: str, run_name: str, records: Sequence[Record], score: float
) -> None:
    """`acc_<name>_<run>.txt` and `generation_<name>_<run>.jsonl`, named as officially."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / f"acc_{name}_{run_name}.txt").write_text(f"Accuracy: {score}. ", encoding="utf-8")
    with open(output_dir / f"generation_{name}_{run_name}.jsonl", "w", encoding="utf-8") as file:
        for record in records:
            file.write(json.dumps(record) + "\n")
