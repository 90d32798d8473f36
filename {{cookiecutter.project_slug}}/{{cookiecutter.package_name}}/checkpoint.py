"""Global adapter checkpoints written straight from arrays, as PEFT adapter folders.

Each `peft_<round>/` holds `adapter_config.json`, `adapter_model.safetensors`,
`training_state.json` (the round and totals it belongs to) and, for strategies that keep
server state (FedAvgM's momentum, FedAdam's and FedYogi's moments),
`strategy_state.safetensors`, restored on resume. It is written in a staging
folder and renamed into place, so a checkpoint is either whole or absent.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
from dataclasses import dataclass
from logging import WARNING
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord
from flwr.common.logger import log
from safetensors.numpy import load_file, save_file

from .modeling.loading import lora_config
from .settings import RunSettings

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
TRAINING_STATE = "training_state.json"
STRATEGY_STATE = "strategy_state.safetensors"
CHECKPOINT_NAME = re.compile(r"^peft_(\d+)$")


@dataclass
class Checkpoint:
    """A saved global adapter and the point of the run it belongs to."""

    directory: Path
    round: int
    comm_total_mb: float
    state: dict[str, np.ndarray]
    strategy_state: dict[str, np.ndarray]

    @property
    def run_dir(self) -> Path:
        return self.directory.parent


def write_float32_safetensors(arrays: ArrayRecord, path: Path) -> None:
    """Write the arrays as float32 safetensors, one tensor in memory at a time."""
    keys = sorted(arrays)
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for key in keys:
        shape = list(arrays[key].shape)
        size = 4 * int(np.prod(shape, dtype=np.int64))
        header[key] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(encoded)) + encoded)
        for key in keys:
            handle.write(np.ascontiguousarray(arrays[key].numpy(), dtype="<f4").tobytes())


def save_adapter(
    arrays: ArrayRecord, settings: RunSettings, directory: Path, comm_total_mb: float,
    strategy_state: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write the adapter folder of one round (with the strategy's server state, if any);
    it appears whole or not at all."""
    server_round = int(CHECKPOINT_NAME.match(directory.name).group(1))
    staging = directory.with_name(directory.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    lora_config(settings).save_pretrained(staging)
    write_float32_safetensors(arrays, staging / ADAPTER_WEIGHTS)
    (staging / TRAINING_STATE).write_text(
        json.dumps({"round": server_round, "comm_total_mb": comm_total_mb}), encoding="utf-8"
    )
    if strategy_state:
        float32 = {key: np.ascontiguousarray(array, np.float32) for key, array in strategy_state.items()}
        save_file(float32, staging / STRATEGY_STATE)
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)
    return directory


def read_checkpoint(directory: Path) -> Checkpoint:
    """Load one checkpoint folder; raises if any part is missing or unreadable."""
    state = json.loads((directory / TRAINING_STATE).read_text(encoding="utf-8"))
    json.loads((directory / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    weights = load_file(directory / ADAPTER_WEIGHTS)
    if not weights:
        raise ValueError("no adapter weights")
    strategy_file = directory / STRATEGY_STATE
    strategy_state = load_file(strategy_file) if strategy_file.is_file() else {}
    return Checkpoint(directory, int(state["round"]), float(state["comm_total_mb"]), weights, strategy_state)


def saved_adapters(run_dir: Path) -> dict[int, Path]:
    """The run's whole checkpoints (`peft_<round>/` with its config, weights and training
    state), by round, in round order."""
    found = {}
    for path in Path(run_dir).glob("peft_*"):
        match = CHECKPOINT_NAME.match(path.name)
        parts = (ADAPTER_CONFIG, ADAPTER_WEIGHTS, TRAINING_STATE)
        if match and all((path / name).is_file() for name in parts):
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def communicated_mb(directory: Path) -> float:
    """Megabytes the run had communicated when this checkpoint was saved."""
    return float(json.loads((directory / TRAINING_STATE).read_text(encoding="utf-8"))["comm_total_mb"])


def base_model_of(directory: Path) -> str | None:
    """The base model an adapter folder names (`base_model_name_or_path`), if any."""
    config = json.loads((directory / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    return config.get("base_model_name_or_path") or None


def latest_checkpoint(results_dir: Path) -> Checkpoint | None:
    """The newest whole checkpoint under `results_dir`; broken ones are named and skipped."""
    candidates = [
        path for path in results_dir.glob("*/peft_*")
        if path.is_dir() and CHECKPOINT_NAME.match(path.name)
    ]
    for path in sorted(candidates, key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            return read_checkpoint(path)
        except Exception as error:  # noqa: BLE001 - any damage makes the checkpoint unusable
            log(WARNING, "Skipping checkpoint %s: it is incomplete or corrupt (%s)", path, error)
    for partial in results_dir.glob("*/peft_*.partial"):
        log(WARNING, "Skipping checkpoint %s: it was never completed", partial)
    return None
