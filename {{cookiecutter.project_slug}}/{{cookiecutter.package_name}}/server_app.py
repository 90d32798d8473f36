"""ServerApp: FedAvg over the adapter arrays; checkpoints written from the aggregate."""

from __future__ import annotations

import time
from collections.abc import Iterable
from logging import ERROR, INFO
from pathlib import Path

from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord
from flwr.common.logger import log
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from .checkpoint import save_adapter
from .communication import CommunicationTracker
from .model import initial_adapter_state
from .settings import RunSettings, read_settings

app = ServerApp()


class NoClientTrainedError(RuntimeError):
    """A round ended without a single successful training reply."""


class FlowerTuneFedAvg(FedAvg):
    """FedAvg that counts communication and refuses rounds in which no client trained."""

    def __init__(self, communication: CommunicationTracker, **kwargs) -> None:
        super().__init__(**kwargs)
        self.communication = communication

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        messages = list(super().configure_train(server_round, arrays, config, grid))
        self.communication.add(server_round, arrays.count_bytes() * len(messages))
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        trained = [msg for msg in replies if not msg.has_error()]
        for msg in trained:
            self.communication.add(server_round, msg.content[self.arrayrecord_key].count_bytes())
        arrays, metrics = super().aggregate_train(server_round, replies)
        self.communication.log_round(server_round)
        if arrays is None:
            failures = "; ".join(
                f"node {msg.metadata.src_node_id}: {msg.error.reason}" for msg in replies
            ) or "no replies arrived"
            message = (
                f"Round {server_round}: no client trained successfully ({failures}). "
                "Stopping instead of saving an untrained adapter."
            )
            log(ERROR, message)
            raise NoClientTrainedError(message)
        return arrays, metrics


def checkpoint_rounds(settings: RunSettings) -> set[int]:
    """Rounds after which the global adapter is saved: every N rounds and the last."""
    last, every = settings.num_server_rounds, settings.save_every_round
    return {*range(every, last + 1, every), last}


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run FedAvg for `num-server-rounds` rounds and save the global adapter."""
    settings = read_settings(context.run_config)
    run_dir = Path(settings.results_dir).resolve() / time.strftime("%Y-%m-%d_%H-%M-%S")
    log(INFO, "Results of this run go to %s", run_dir)

    initial_arrays = ArrayRecord(
        {key: Array(value) for key, value in initial_adapter_state(settings).items()}
    )
    communication = CommunicationTracker()
    strategy = FlowerTuneFedAvg(
        communication,
        fraction_train=settings.fraction_train,
        fraction_evaluate=settings.fraction_evaluate,
        min_train_nodes=1,
        min_evaluate_nodes=1,
        min_available_nodes=1,
    )
    save_after = checkpoint_rounds(settings)

    def save_global_adapter(server_round: int, arrays: ArrayRecord) -> None:
        if server_round in save_after:
            state = {key: array.numpy() for key, array in arrays.items()}
            path = save_adapter(state, settings, run_dir / f"peft_{server_round}")
            log(INFO, "Saved the global adapter of round %s to %s", server_round, path)

    strategy.start(
        grid=grid,
        initial_arrays=initial_arrays,
        num_rounds=settings.num_server_rounds,
        evaluate_fn=save_global_adapter,
    )
    log(
        INFO,
        "Done: %s rounds, %.2f MB communicated (budget %.0f MB); adapters in %s",
        settings.num_server_rounds, communication.total_mb, communication.budget_mb, run_dir,
    )
