"""The adapter on the wire: its dtype in transit and the bytes it costs, per round and in total."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from logging import INFO, WARNING

import numpy as np
from flwr.app import Array, ArrayRecord
from flwr.common.logger import log

from .challenges import BYTES_PER_MB, COMMUNICATION_BUDGET_MB


def to_arrays(state: dict[str, np.ndarray], dtype: str) -> ArrayRecord:
    """An ArrayRecord of the adapter in `dtype`, keys sorted (one order everywhere: server
    optimizers pair arrays by position); the state's entries are released on the way."""
    return ArrayRecord({key: Array(state.pop(key).astype(dtype, copy=False)) for key in sorted(state)})


def to_state(arrays: ArrayRecord) -> dict[str, np.ndarray]:
    """Adapter arrays as float32 NumPy arrays (aggregation and checkpoints use float32)."""
    return {key: array.numpy().astype(np.float32, copy=False) for key, array in arrays.items()}


def in_dtype(arrays: ArrayRecord, dtype: str) -> ArrayRecord:
    """`arrays` in `dtype` and sorted key order: itself when it already is (no copy), else a
    converted record."""
    keys = list(arrays.keys())
    if keys == sorted(keys) and all(array.dtype == dtype for array in arrays.values()):
        return arrays
    return to_arrays(to_state(arrays), dtype)


@dataclass
class CommunicationTracker:
    """Bytes sent to and received from clients, both directions counted."""

    carried_mb: float = 0.0
    budget_mb: float = COMMUNICATION_BUDGET_MB
    bytes_per_round: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, server_round: int, num_bytes: int) -> None:
        """Count `num_bytes` as travelled in `server_round`."""
        self.bytes_per_round[server_round] += num_bytes

    def round_mb(self, server_round: int) -> float:
        """Megabytes that travelled in one round."""
        return self.bytes_per_round.get(server_round, 0) / BYTES_PER_MB

    @property
    def total_mb(self) -> float:
        """Megabytes that travelled in the run so far (a resumed run's earlier rounds too)."""
        return self.carried_mb + sum(self.bytes_per_round.values()) / BYTES_PER_MB

    def log_round(self, server_round: int) -> str:
        """Log and return one line on this round's and the run's communication."""
        line = (
            f"Communication: round {server_round} {self.round_mb(server_round):.2f} MB, "
            f"total {self.total_mb:.2f} MB of the {self.budget_mb:,.0f} MB budget "
            f"({100 * self.total_mb / self.budget_mb:.4f}%)"
        )
        exceeded = self.total_mb > self.budget_mb
        if exceeded:
            line += " -- BUDGET EXCEEDED"
        log(WARNING if exceeded else INFO, line)
        return line
