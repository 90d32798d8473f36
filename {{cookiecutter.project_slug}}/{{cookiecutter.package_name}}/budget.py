"""The communication a run will use, worked out before its first round.

Every round, each training client receives the global adapter and sends its own back, and
each evaluating client receives it; every array costs what Flower counts for it
(`ArrayRecord.count_bytes`: its key and its NumPy serialization). The server checks the plan
against the budget before round 1; the rendered README shows the same figure, from the same
function, where the model's config can be read at render time.

Import-light (NumPy only): the template's Jinja filter uses it too.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from .challenges import BYTES_PER_MB, COMMUNICATION_BUDGET_MB
from .settings import RunSettings

LORA_B = ".lora_B.weight"
DORA_MAGNITUDE = ".lora_magnitude_vector"

Shapes = Mapping[str, tuple[int, ...]]


def array_bytes(key: str, shape: tuple[int, ...], dtype: str) -> int:
    """Bytes one adapter array costs on the wire: its key and its `.npy` serialization."""
    header = io.BytesIO()
    descr = np.lib.format.dtype_to_descr(np.dtype(dtype))
    np.lib.format.write_array_header_1_0(
        header, {"descr": descr, "fortran_order": False, "shape": tuple(shape)}
    )
    return len(key) + len(header.getvalue()) + np.dtype(dtype).itemsize * math.prod(shape)


def adapter_bytes(shapes: Shapes, dtype: str) -> int:
    """Bytes of a whole adapter in `dtype` on the wire."""
    return sum(array_bytes(key, shape, dtype) for key, shape in shapes.items())


def with_dora_magnitudes(shapes: Shapes) -> dict[str, tuple[int, ...]]:
    """The shapes with a DoRA magnitude vector (one per output feature) beside every LoRA B
    matrix that has none yet: what clients send back, and the global adapter carries from
    the first aggregate on."""
    full = dict(shapes)
    for key, shape in shapes.items():
        if key.endswith(LORA_B):
            full.setdefault(key.removesuffix(LORA_B) + DORA_MAGNITUDE, (shape[0],))
    return full


def clients_per_round(num_nodes: int, fraction: float) -> int:
    """Nodes a Flower strategy samples for a fraction (at least one), as FedAvg samples them."""
    return max(int(num_nodes * fraction), 1)


@dataclass(frozen=True)
class CommunicationPlan:
    """The megabytes a run will move, and what drives them."""

    rounds: int
    num_nodes: int
    train_clients: int  # per round
    evaluate_clients: int  # per round (0: no federated evaluation)
    transport_dtype: str
    adapter_mb: float  # the global adapter as it travels from the first aggregate on
    first_download_mb: float  # the adapter sent in the first round (no DoRA magnitudes yet)
    carried_mb: float  # communicated before a resumed run's first round
    total_mb: float

    @property
    def budget_percent(self) -> float:
        return 100 * self.total_mb / COMMUNICATION_BUDGET_MB

    @property
    def over_budget(self) -> bool:
        return self.total_mb > COMMUNICATION_BUDGET_MB

    def drivers(self) -> str:
        """The settings behind the total, as arithmetic."""
        text = (f"{self.rounds} rounds x {self.train_clients} of {self.num_nodes} clients x 2 directions "
                f"x {self.adapter_mb:,.2f} MB adapter in {self.transport_dtype}")
        if self.evaluate_clients:
            text += (f", + {self.rounds} rounds x {self.evaluate_clients} evaluating clients "
                     f"x {self.adapter_mb:,.2f} MB")
        if self.carried_mb:
            text += f", + {self.carried_mb:,.2f} MB before resuming"
        return text

    def summary(self) -> str:
        """One line: the projected megabytes, their share of the budget and how they arise."""
        return (f"{self.total_mb:,.2f} MB, {self.budget_percent:.2f}% of the "
                f"{COMMUNICATION_BUDGET_MB:,.0f} MB budget ({self.drivers()})")

    def as_dict(self) -> dict:
        return {**asdict(self), "budget_mb": COMMUNICATION_BUDGET_MB, "budget_percent": self.budget_percent}


def plan_communication(
    shapes: Shapes, *, transport_dtype: str, num_nodes: int, fraction_train: float,
    fraction_evaluate: float, rounds: int, use_dora: bool, carried_mb: float = 0.0,
) -> CommunicationPlan:
    """The plan of `rounds` rounds starting from an adapter of `shapes` (the arrays the
    server sends first; with DoRA, the clients' replies add the magnitudes)."""
    full = with_dora_magnitudes(shapes) if use_dora else dict(shapes)
    first, later = adapter_bytes(shapes, transport_dtype), adapter_bytes(full, transport_dtype)
    train = clients_per_round(num_nodes, fraction_train)
    evaluate = clients_per_round(num_nodes, fraction_evaluate) if fraction_evaluate > 0 else 0
    total = 0
    if rounds > 0:
        total = train * (first + later) + (rounds - 1) * train * 2 * later + rounds * evaluate * later
    return CommunicationPlan(
        rounds=rounds, num_nodes=num_nodes, train_clients=train, evaluate_clients=evaluate,
        transport_dtype=transport_dtype, adapter_mb=later / BYTES_PER_MB,
        first_download_mb=first / BYTES_PER_MB, carried_mb=carried_mb,
        total_mb=carried_mb + total / BYTES_PER_MB,
    )


def plan_run(
    settings: RunSettings, shapes: Shapes, num_nodes: int, rounds_done: int = 0, carried_mb: float = 0.0
) -> CommunicationPlan:
    """The plan of the rounds a run has left, from the adapter it starts them with."""
    return plan_communication(
        shapes, transport_dtype=settings.transport_dtype, num_nodes=num_nodes,
        fraction_train=settings.fraction_train, fraction_evaluate=settings.fraction_evaluate,
        rounds=settings.num_server_rounds - rounds_done, use_dora=settings.lora.use_dora,
        carried_mb=carried_mb,
    )


def over_budget_message(plan: CommunicationPlan, settings: RunSettings) -> str:
    """One line: the projected megabytes and the settings that drive them."""
    return (
        f"the run would communicate {plan.total_mb:,.0f} MB, over the {COMMUNICATION_BUDGET_MB:,.0f} MB "
        f"budget ({plan.drivers()}): num-server-rounds = {settings.num_server_rounds}, "
        f"strategy.fraction-train = {settings.fraction_train}, strategy.fraction-evaluate = "
        f"{settings.fraction_evaluate}, model.lora.peft-lora-r = {settings.lora.r}, "
        f"model.lora.target-modules = {settings.lora.target_modules!r}, strategy.transport-dtype = "
        f"{settings.transport_dtype!r}; lower one of them (float16 halves the adapter) or set "
        "strategy.allow-over-budget = true to run anyway"
    )
