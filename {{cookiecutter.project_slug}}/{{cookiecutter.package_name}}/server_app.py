"""ServerApp: the chosen strategy over the adapter arrays, checkpoints and records written from
the aggregate (the strategies live in `strategies/`).

The server never loads base weights: the initial adapter comes from the model's config
(`initial_adapter_state`) and checkpoints are written straight from the aggregated arrays.
"""

from __future__ import annotations

import time
from logging import ERROR, INFO, WARNING
from pathlib import Path

import numpy as np
import torch
from flwr.app import Context
from flwr.common.logger import log
from flwr.serverapp import Grid, ServerApp

from .budget import CommunicationPlan, over_budget_message, plan_run
from .challenges import challenge
from .checkpoint import Checkpoint, latest_checkpoint
from .communication import CommunicationTracker, to_arrays
from .dataset import check_columns, federated_dataset
from .leaderboard import write_leaderboard_record
from .modeling.loading import initial_adapter_state, lora_targets, model_skeleton
from .modeling.lora_targets import NOT_QUANTIZABLE
from .modeling.targets import TargetModulesError
from .run_record import RunRecord, write_run_config
from .settings import STRATEGY_NAMES, TRANSPORT_DTYPES, RunSettings, read_settings
from .strategies.catalog import build_strategy

app = ServerApp()
SUMMARY_UPLOAD_SECONDS = 1.0


class SettingsError(ValueError):
    """A run setting that cannot work; found before any training."""


class NoClientTrainedError(RuntimeError):
    """Not a single client trained successfully in the whole run."""


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
    if settings.strategy.name not in STRATEGY_NAMES:
        raise SettingsError(
            f"strategy.name = {settings.strategy.name!r}; use one of {', '.join(STRATEGY_NAMES)}"
        )
    if not 0 <= settings.fraction_evaluate <= 1:
        raise SettingsError(
            f"strategy.fraction-evaluate = {settings.fraction_evaluate}; use a fraction in [0, 1] "
            "(0: no validation loss)"
        )
    if settings.fraction_evaluate > 0 and not 0 < settings.validation_fraction < 1:
        raise SettingsError(
            f"train.validation-fraction = {settings.validation_fraction} holds out no rows or all of "
            "them; use a fraction in (0, 1)"
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
    """The initial adapter, or a clear error when the model cannot be found, read or quantized."""
    try:
        model_type = model_skeleton(settings.model_name, settings.trust_remote_code).config.model_type
        if model_type in NOT_QUANTIZABLE:
            raise SettingsError(
                f"model.name = {settings.model_name!r}: a {model_type!r} model cannot train or be evaluated "
                f"quantized ({NOT_QUANTIZABLE[model_type]}); choose another base model"
            )
        log(INFO, "LoRA adapts %s", lora_targets(settings).describe())
        return initial_adapter_state(settings)
    except TargetModulesError as error:
        raise SettingsError(str(error)) from None
    except OSError as error:
        reason = str(error).strip().splitlines()[0]
        raise SettingsError(
            f"model.name = {settings.model_name!r} cannot be loaded ({reason}); use a hub id "
            "(owner/name) or the path of a local model folder"
        ) from None


def communication_plan(
    settings: RunSettings, arrays, checkpoint: Checkpoint | None, num_nodes: int
) -> CommunicationPlan:
    """The communication of the rounds to run, logged; a `SettingsError` when it exceeds the
    budget, unless `strategy.allow-over-budget`."""
    plan = plan_run(
        settings, {key: tuple(array.shape) for key, array in arrays.items()}, num_nodes,
        rounds_done=checkpoint.round if checkpoint else 0,
        carried_mb=checkpoint.comm_total_mb if checkpoint else 0.0,
    )
    if plan.over_budget:
        message = over_budget_message(plan, settings)
        if not settings.allow_over_budget:
            raise SettingsError(f"Refusing to start: {message}")
        log(WARNING, "strategy.allow-over-budget = true, starting anyway: %s", message)
    log(INFO, "Communication plan: %s", plan.summary())
    return plan


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run the strategy for `num-server-rounds` rounds (or the rest of them, when resuming)."""
    settings = read_settings(context.run_config)
    try:
        check_settings(settings)
        results_dir = Path(settings.results_dir).resolve()
        checkpoint = latest_checkpoint(results_dir) if settings.resume else None
        # to_arrays empties the NumPy state as it goes: one copy of the adapter at a time
        initial_arrays = to_arrays(initial_state(settings) if checkpoint is None else checkpoint.state,
                                   "float32")
        num_supernodes = len(list(grid.get_node_ids()))
        plan = communication_plan(settings, initial_arrays, checkpoint, num_supernodes)
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
    write_run_config(run_dir, context.run_config)
    write_leaderboard_record(run_dir, settings, num_supernodes, plan=plan)

    communication = CommunicationTracker(carried_mb=checkpoint.comm_total_mb if checkpoint else 0.0)
    strategy = build_strategy(settings, record, communication, round_offset=done)
    if checkpoint is not None:
        strategy.restore_server_state(checkpoint.strategy_state)
    if done < settings.num_server_rounds:
        strategy.start(
            grid=grid,
            initial_arrays=initial_arrays,
            num_rounds=settings.num_server_rounds - done,
            evaluate_fn=strategy.end_round,
        )
    if strategy.trained_rounds == 0 and checkpoint is None:
        message = (f"Stopping: no client trained successfully in any of the "
                   f"{settings.num_server_rounds} rounds; no adapter was saved (node errors above).")
        log(ERROR, message)
        raise NoClientTrainedError(message)
    write_leaderboard_record(
        run_dir, settings, len(list(grid.get_node_ids())), communication.total_mb, announce=False, plan=plan
    )
    for line in record.summary().splitlines():  # a record per line: each reaches the stream whole
        log(INFO, "%s", line)
    # Flower marks the run finished once this returns, and `flwr run --stream` stops reading
    # then: give its log uploader (one push every 0.2 s) time to send the summary first.
    time.sleep(SUMMARY_UPLOAD_SECONDS)
