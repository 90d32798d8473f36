"""Global adapter checkpoints written straight from arrays, as PEFT adapter folders."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from .model import lora_config
from .settings import RunSettings

ADAPTER_WEIGHTS = "adapter_model.safetensors"


def save_adapter(state: Mapping[str, np.ndarray], settings: RunSettings, directory: Path) -> Path:
    """Write `adapter_config.json` and the weights; the folder appears whole or not at all."""
    staging = directory.with_name(directory.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    lora_config(settings).save_pretrained(staging)
    save_file(
        {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in state.items()},
        staging / ADAPTER_WEIGHTS,
    )
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)
    return directory
