"""ServerApp: FedAvg over the adapter arrays, checkpoints and records written from the aggregate.

The server never loads base weights: the initial adapter comes from the model's config
(`initial_adapter_state`) and checkpoints are written straight from the aggregated arrays.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from logging import ERROR, INFO, WARNING
from pathlib import Path

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord
from flwr.common.logger import log
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from .challenges import challenge
from .checkpoint import latest_checkpoint, save_adapter
from .communication import CommunicationTracker, in_dtype, to_arrays
from .dataset import check_columns, federated_dataset
from .leaderboard import write_leaderboard_record
from .model import TargetModulesError, initial_adapter_state
from .run_record import RoundRecord, RunRecord
from .settings import TRANSPORT_DTYPES, RunSettings, read_settings

app = ServerApp()


class SettingsError(ValueError):
    """A run setting that cannot work; found before any training."""


class NoClientTrainedError(RuntimeError):
    """Not a single client trained successfully in the whole run."""


def short_reason(reason: str) -> str:
    """The client's own error message, without the remote traceback around it."""
    messages = re.findall(r"Message: (.+)", reason)
    lines = [line for line in reason.strip().splitlines() if line.strip()]
    if messages:
        return messages[-1].strip().removesuffix("'>")
    return lines[-1] if lines else "unknown error"


def weighted_train_metrics(contents: list, weight_key: str) -> MetricRecord:
    """Example-weighted training loss and the round's learning rate."""
    metrics = [content["metrics"] for content in contents]
    weights = [float(m[weight_key]) for m in metrics]
    loss = sum(float(m["train_loss"]) * w for m, w in zip(metrics, weights, strict=True)) / sum(weights)
    return MetricRecord({"train_loss": loss, "learning_rate": float(metrics[0]["learning_rate"])})


class FlowerTuneFedAvg(FedAvg):
    """FedAvg that records every round, tolerates failing clients and saves checkpoints."""

    def __init__(
        self, settings: RunSettings, record: RunRecord, communication: CommunicationTracker,
        round_offset: int,
    ) -> None:
        super().__init__(
            fraction_train=settings.fraction_train,
            fraction_evaluate=settings.fraction_evaluate,
            min_train_nodes=1,
            min_evaluate_nodes=1,
            min_available_nodes=1,
            train_metrics_aggr_fn=weighted_train_metrics,
        )
        self.settings = settings
        self.record = record
        self.communication = communication
        self.round_offset = round_offset
        self.trained_rounds = 0
        self.round_started = time.monotonic()
        self.checkpoint_rounds = checkpoint_rounds(settings)

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        server_round += self.round_offset
        log(INFO, "Round %s of %s", server_round, self.settings.num_server_rounds)
        self.round_started = time.monotonic()
        sent = in_dtype(arrays, self.settings.transport_dtype)
        messages = list(super().configure_train(server_round, sent, config, grid))
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
        for msg in trained:
            self.communication.add(server_round, msg.content[self.arrayrecord_key].count_bytes())
            self.record.note_client(dict(msg.content["metrics"]))
            msg.content[self.arrayrecord_key] = in_dtype(msg.content[self.arrayrecord_key], "float32")
        arrays, metrics = None, None
        if len(trained) >= self.settings.min_train_replies:
            arrays, metrics = super().aggregate_train(server_round, trained)
            self.trained_rounds += 1
        else:
            log(ERROR, "Round %s: %s of %s clients trained successfully, fewer than the %s required "
                "(strategy.min-train-replies); keeping the previous global adapter",
                server_round, len(trained), len(replies), self.settings.min_train_replies)
        self.communication.log_round(server_round)
        self.record.add_round(RoundRecord(
            round=server_round,
            train_loss=float(metrics["train_loss"]) if metrics else None,
            learning_rate=float(metrics["learning_rate"]) if metrics else None,
            comm_mb=self.communication.round_mb(server_round),
            seconds=time.monotonic() - self.round_started,
            clients=len(trained) if metrics else 0,
            failures=len(failed),
        ))
        return arrays, metrics

    def save_checkpoint(self, server_round: int, arrays: ArrayRecord) -> None:
        """`evaluate_fn` hook: save the global adapter after the rounds that call for it."""
        server_round += self.round_offset
        if server_round not in self.checkpoint_rounds or server_round == self.round_offset:
            return
        if self.trained_rounds == 0 and self.round_offset == 0:
            log(WARNING, "Round %s: no round has trained yet; nothing to save", server_round)
            return
        path = save_adapter(
            arrays, self.settings, self.record.run_dir / f"peft_{server_round}", self.communication.total_mb
        )
        log(INFO, "Saved the global adapter of round %s to %s", server_round, path)


def checkpoint_rounds(settings: RunSettings) -> set[int]:
    """Rounds after which the global adapter is saved: every N rounds and the last."""
    last, every = settings.num_server_rounds, settings.save_every_round
    return {*range(every, last + 1, every), last}


def check_settings(settings: RunSettings) -> None:
    """Stop bad settings before anything expensive, naming the value and the fix."""
    try:
        challenge(settings.challenge)
    except ValueError as error:
        raise SettingsError(f"static.{error}") from None
    if not 0 < settings.fraction_train <= 1:
        raise SettingsError(
            f"strategy.fraction-train = {settings.fraction_train} trains no client; "
            "use a fraction in (0, 1]"
        )
    if settings.quantization not in (4, 8):
        raise SettingsError(f"model.quantization = {settings.quantization}; use 4 or 8")
    if settings.bf16 and torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
        raise SettingsError(
            "train.training-arguments.bf16 = true, but this GPU has no bfloat16; set it to false (float16)"
        )
    if settings.transport_dtype not in TRANSPORT_DTYPES:
        raise SettingsError(
            f"strategy.transport-dtype = {settings.transport_dtype!r}; use one of "
            f"{', '.join(TRANSPORT_DTYPES)}"
        )
    if settings.trust_remote_code:
        log(WARNING, "model.trust-remote-code = true: code from %s will run on every client",
            settings.model_name)
    try:
        check_columns(federated_dataset(settings.dataset_name, 1).load_partition(0, "train"),
                      settings.challenge)
    except ValueError as error:
        raise SettingsError(str(error)) from None
    except Exception as error:  # noqa: BLE001 - any loading failure means the same to the user
        raise SettingsError(
            f"static.dataset.name = {settings.dataset_name!r} cannot be loaded ({error}); "
            "use a hub data set id or a local folder of JSON/Parquet files"
        ) from None


def initial_state(settings: RunSettings) -> dict[str, np.ndarray]:
    """The initial adapter, or a clear error when the model cannot be found or read."""
    try:
        return initial_adapter_state(settings)
    except TargetModulesError as error:
        raise SettingsError(str(error)) from None
    except OSError as error:
        reason = str(error).strip().splitlines()[0]
        raise SettingsError(
            f"model.name = {settings.model_name!r} cannot be loaded ({reason}); use a hub id "
            "(owner/name) or the path of a local model folder"
        ) from None


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run FedAvg for `num-server-rounds` rounds (or the rest of them, when resuming)."""
    settings = read_settings(context.run_config)
    try:
        check_settings(settings)
        results_dir = Path(settings.results_dir).resolve()
        checkpoint = latest_checkpoint(results_dir) if settings.resume else None
        # to_arrays empties the NumPy state as it goes: one copy of the adapter at a time
        initial_arrays = to_arrays(initial_state(settings) if checkpoint is None else checkpoint.state,
                                   "float32")
    except SettingsError as error:
        log(ERROR, "%s", error)
        raise

    if checkpoint is None:
        if settings.resume:
            log(WARNING, "train.resume = true, but no checkpoint under %s: starting at round 1",
                results_dir)
        run_dir, done = results_dir / time.strftime("%Y-%m-%d_%H-%M-%S"), 0
        record = RunRecord(run_dir)
    else:
        run_dir, done = checkpoint.run_dir, checkpoint.round
        record = RunRecord.load(run_dir, done)
        log(INFO, "Resumed from %s: round %s of %s done, %.2f MB communicated so far",
            checkpoint.directory, done, settings.num_server_rounds, checkpoint.comm_total_mb)
    log(INFO, "Results of this run go to %s", run_dir)
    write_leaderboard_record(run_dir, settings, num_supernodes=len(list(grid.get_node_ids())))

    communication = CommunicationTracker(carried_mb=checkpoint.comm_total_mb if checkpoint else 0.0)
    strategy = FlowerTuneFedAvg(settings, record, communication, round_offset=done)
    if done < settings.num_server_rounds:
        strategy.start(
            grid=grid,
            initial_arrays=initial_arrays,
            num_rounds=settings.num_server_rounds - done,
            evaluate_fn=strategy.save_checkpoint,
        )
    if strategy.trained_rounds == 0 and checkpoint is None:
        message = (f"Stopping: no client trained successfully in any of the "
                   f"{settings.num_server_rounds} rounds; no adapter was saved (node errors above).")
        log(ERROR, message)
        raise NoClientTrainedError(message)
    write_leaderboard_record(
        run_dir, settings, len(list(grid.get_node_ids())), communication.total_mb, announce=False
    )
    log(INFO, "%s", record.summary())
