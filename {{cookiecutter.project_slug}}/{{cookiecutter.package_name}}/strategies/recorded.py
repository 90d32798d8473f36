"""What every strategy of the run shares, as a mixin over any Flower strategy.

`Recorded` sits before a Flower strategy class (`class X(Recorded, FedAdam)`) and adds: the
adapter in the transport dtype on the wire (float32 on the server), failing clients logged and
counted, a round kept only with `strategy.min-train-replies` replies, one `metrics.json` entry per
round (with the validation loss and each node's first batch), and checkpoints holding the
strategy's server state (`server_state_names`), restored on resume.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from logging import ERROR, INFO, WARNING

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.common.logger import log
from flwr.serverapp import Grid

from ..checkpoint import save_adapter
from ..communication import CommunicationTracker, in_dtype, to_arrays, to_state
from ..run_record import RoundRecord, RunRecord
from ..settings import RunSettings


def short_reason(reason: str) -> str:
    """The client's own error message, without the remote traceback around it."""
    messages = re.findall(r"Message: (.+)", reason)
    lines = [line for line in reason.strip().splitlines() if line.strip()]
    if messages:
        return messages[-1].strip().removesuffix("'>")
    return lines[-1] if lines else "unknown error"


def weighted_mean(contents: list, name: str, weight_key: str) -> float:
    """The replies' metric `name`, weighted by their `weight_key` (examples)."""
    metrics = [content["metrics"] for content in contents]
    weights = [float(m[weight_key]) for m in metrics]
    return sum(float(m[name]) * w for m, w in zip(metrics, weights, strict=True)) / sum(weights)


def weighted_train_metrics(contents: list, weight_key: str) -> MetricRecord:
    """Example-weighted training loss and the round's learning rate."""
    return MetricRecord({
        "train_loss": weighted_mean(contents, "train_loss", weight_key),
        "learning_rate": float(contents[0]["metrics"]["learning_rate"]),
    })


def weighted_eval_metrics(contents: list, weight_key: str) -> MetricRecord:
    """Example-weighted validation loss and the number of nodes that reported it."""
    return MetricRecord({
        "eval_loss": weighted_mean(contents, "eval_loss", weight_key), "eval_clients": len(contents),
    })


def checkpoint_rounds(settings: RunSettings) -> set[int]:
    """Rounds after which the global adapter is saved: every N rounds and the last."""
    last, every = settings.num_server_rounds, settings.save_every_round
    return {*range(every, last + 1, every), last}


def strategy_options(settings: RunSettings) -> dict:
    """The keyword arguments every Flower strategy of the run takes."""
    return {
        "fraction_train": settings.fraction_train,
        "fraction_evaluate": settings.fraction_evaluate,
        "min_train_nodes": 1,
        "min_evaluate_nodes": 1,
        "min_available_nodes": 1,
        "train_metrics_aggr_fn": weighted_train_metrics,
        "evaluate_metrics_aggr_fn": weighted_eval_metrics,
    }


class Recorded:
    """Recording, checkpointing, failure handling and transport dtype for a Flower strategy."""

    # attributes of the Flower strategy holding server state: dicts of arrays by adapter key,
    # and those of them it keeps as lists in the adapter's (sorted) key order
    server_state_names: tuple[str, ...] = ()
    list_state_names: tuple[str, ...] = ()

    def __init__(
        self, settings: RunSettings, record: RunRecord, communication: CommunicationTracker,
        round_offset: int, **strategy_kwargs,
    ) -> None:
        super().__init__(**strategy_options(settings), **strategy_kwargs)
        self.settings = settings
        self.record = record
        self.communication = communication
        self.round_offset = round_offset
        self.trained_rounds = 0
        self.round_started = time.monotonic()
        self.checkpoint_rounds = checkpoint_rounds(settings)
        self.pending: RoundRecord | None = None

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        server_round += self.round_offset
        log(INFO, "Round %s of %s", server_round, self.settings.num_server_rounds)
        self.round_started = time.monotonic()
        messages = super().configure_train(server_round, arrays, config, grid)
        return self.in_transport_dtype(server_round, messages)

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        server_round += self.round_offset
        messages = super().configure_evaluate(server_round, arrays, config, grid)
        return self.in_transport_dtype(server_round, messages)

    def in_transport_dtype(self, server_round: int, messages: Iterable[Message]) -> list[Message]:
        """The messages with the adapter in the transport dtype, counted as communication (the
        Flower strategy keeps its float32 arrays)."""
        messages = list(messages)
        if messages:
            sent = in_dtype(messages[0].content[self.arrayrecord_key], self.settings.transport_dtype)
            for message in messages:
                message.content[self.arrayrecord_key] = sent
            self.communication.add(server_round, sent.count_bytes() * len(messages))
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        server_round += self.round_offset
        replies = list(replies)
        failed = [msg for msg in replies if msg.has_error()]
        trained = [msg for msg in replies if not msg.has_error()]
        for msg in failed:
            log(WARNING, "Round %s: node %s failed: %s", server_round, msg.metadata.src_node_id,
                short_reason(msg.error.reason))
        first_batches = {}
        for msg in trained:
            self.communication.add(server_round, msg.content[self.arrayrecord_key].count_bytes())
            metrics = msg.content["metrics"]
            self.record.note_client(dict(metrics))
            first_batches[str(int(metrics["partition-id"]))] = [int(row) for row in metrics["first-batch"]]
            # float32 in one (sorted) key order, as the server's own arrays
            msg.content[self.arrayrecord_key] = in_dtype(msg.content[self.arrayrecord_key], "float32")
        arrays, metrics = None, None
        if len(trained) >= self.settings.min_train_replies:
            self.adopt_new_entries(trained)
            arrays, metrics = super().aggregate_train(server_round, trained)
            self.trained_rounds += 1
        else:
            log(ERROR, "Round %s: %s of %s clients trained successfully, fewer than the %s required "
                "(strategy.min-train-replies); keeping the previous global adapter",
                server_round, len(trained), len(replies), self.settings.min_train_replies)
        self.pending = RoundRecord(
            round=server_round,
            train_loss=float(metrics["train_loss"]) if metrics else None,
            learning_rate=float(metrics["learning_rate"]) if metrics else None,
            comm_mb=0.0,  # set when the round ends, evaluation included
            seconds=0.0,
            clients=len(trained) if metrics else 0,
            failures=len(failed),
            first_batches=dict(sorted(first_batches.items())),
        )
        return arrays, metrics

    def adopt_new_entries(self, trained: list[Message]) -> None:
        """Give a server optimizer's current arrays the entries the clients add (DoRA magnitudes,
        which only clients can compute), at the clients' mean: they start with no update."""
        current = getattr(self, "current_arrays", None)
        if current is None:
            return
        contents = [msg.content for msg in trained]
        new_keys = set(contents[0][self.arrayrecord_key]) - set(current)
        if not new_keys:
            return
        weights = np.array([float(c["metrics"][self.weighted_by_key]) for c in contents])
        weights /= weights.sum()
        mean = {
            key: sum(w * c[self.arrayrecord_key][key].numpy() for w, c in zip(weights, contents, strict=True))
            for key in new_keys
        }
        if isinstance(current, ArrayRecord):
            self.current_arrays = to_arrays({**to_state(current), **mean}, "float32")
        else:
            self.current_arrays = {**current, **mean}

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        server_round += self.round_offset
        replies = list(replies)
        for msg in replies:
            if msg.has_error():
                log(WARNING, "Round %s: node %s failed to evaluate: %s", server_round,
                    msg.metadata.src_node_id, short_reason(msg.error.reason))
        metrics = super().aggregate_evaluate(server_round, replies)
        if metrics is not None and self.pending is not None:
            self.pending.eval_loss = float(metrics["eval_loss"])
            self.pending.eval_clients = int(metrics["eval_clients"])
        return metrics

    def end_round(self, server_round: int, arrays: ArrayRecord) -> None:
        """`evaluate_fn` hook, called after each round: record it, then save a checkpoint when due."""
        server_round += self.round_offset
        if self.pending is None or server_round == self.round_offset:
            return
        self.communication.log_round(server_round)
        self.pending.comm_mb = self.communication.round_mb(server_round)
        self.pending.seconds = time.monotonic() - self.round_started
        self.record.add_round(self.pending)
        self.pending = None
        if server_round not in self.checkpoint_rounds:
            return
        if self.trained_rounds == 0 and self.round_offset == 0:
            log(WARNING, "Round %s: no round has trained yet; nothing to save", server_round)
            return
        path = save_adapter(arrays, self.settings, self.record.run_dir / f"peft_{server_round}",
                            self.communication.total_mb, self.server_state())
        log(INFO, "Saved the global adapter of round %s to %s", server_round, path)

    def server_state(self) -> dict[str, np.ndarray]:
        """The strategy's server state as flat arrays, `<attribute>/<adapter key>`."""
        state = {}
        for name in self.server_state_names:
            value = getattr(self, name)
            if value is None:
                continue
            if name in self.list_state_names:
                value = dict(zip(list(self.current_arrays.keys()), value, strict=True))
            state.update({f"{name}/{key}": np.asarray(array) for key, array in value.items()})
        return state

    def restore_server_state(self, state: dict[str, np.ndarray]) -> None:
        """Put back the server state a checkpoint saved (see `server_state`)."""
        for name in self.server_state_names:
            entries = {key.split("/", 1)[1]: value for key, value in state.items()
                       if key.startswith(name + "/")}
            if not entries:
                continue
            value = [entries[key] for key in sorted(entries)] if name in self.list_state_names else entries
            setattr(self, name, value)
            log(INFO, "Restored the strategy's %s (%s arrays) from the checkpoint", name, len(entries))
