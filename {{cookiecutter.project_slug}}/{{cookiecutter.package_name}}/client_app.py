"""ClientApp: fine-tune the global adapter on this node's partition for one round."""

from __future__ import annotations

import math
import tempfile
import warnings

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from transformers import AutoTokenizer
from trl import SFTConfig, SFTTrainer

from .dataset import load_partition
from .model import adapter_state, build_peft_model, cosine_annealing, load_adapter_state
from .settings import RunSettings, read_settings

app = ClientApp()

# One loaded model per process and model setting, reused across rounds and partitions.
_LOADED: dict[str, tuple[torch.nn.Module, object, dict[str, np.ndarray]]] = {}


def _model_key(settings: RunSettings) -> str:
    return repr((settings.model_name, settings.quantization, settings.bf16,
                 settings.gradient_checkpointing, settings.lora))


def loaded_model(settings: RunSettings):
    """The PEFT model, its tokenizer and its freshly initialised adapter state."""
    key = _model_key(settings)
    if key not in _LOADED:
        model = build_peft_model(settings)
        tokenizer = AutoTokenizer.from_pretrained(settings.model_name)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        _LOADED[key] = (model, tokenizer, adapter_state(model))
    return _LOADED[key]


def device_arguments(arguments: dict) -> dict:
    """Adapt the training arguments to this machine: CPU training, no tf32 without CUDA."""
    arguments = dict(arguments)
    if not torch.cuda.is_available():
        arguments["use_cpu"] = True
    if arguments.get("tf32") and not (
        torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8
    ):
        warnings.warn("tf32 needs an Ampere or newer GPU; training without it", stacklevel=2)
        arguments["tf32"] = False
    return arguments


def sft_config(settings: RunSettings, learning_rate: float, output_dir: str) -> SFTConfig:
    """TRL settings of one round: constant learning rate, loss on the response only."""
    arguments = device_arguments(settings.training_arguments)
    arguments.update(
        output_dir=output_dir,
        learning_rate=learning_rate,
        max_length=settings.seq_length,
        completion_only_loss=True,
        gradient_checkpointing=settings.gradient_checkpointing,
        fp16=not settings.bf16 and not arguments.get("use_cpu", False),
        bf16=settings.bf16,
        save_strategy="no",
        report_to="none",
        seed=settings.seed,
    )
    return SFTConfig(**arguments)


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Train the received adapter on this partition and send it back."""
    settings = read_settings(context.run_config)
    server_round = int(msg.content["config"]["server-round"])
    model, tokenizer, initial_state = loaded_model(settings)
    load_adapter_state(model, initial_state)
    load_adapter_state(model, {key: array.numpy() for key, array in msg.content["arrays"].items()})

    dataset = load_partition(
        settings.dataset_name,
        int(context.node_config["partition-id"]),
        int(context.node_config["num-partitions"]),
    )
    learning_rate = cosine_annealing(
        server_round, settings.num_server_rounds,
        settings.learning_rate_max, settings.learning_rate_min,
    )
    with tempfile.TemporaryDirectory() as output_dir:
        trainer = SFTTrainer(
            model=model,
            args=sft_config(settings, learning_rate, output_dir),
            train_dataset=dataset,
            processing_class=tokenizer,
        )
        loss = trainer.train().training_loss
    if not math.isfinite(loss):
        raise RuntimeError(f"round {server_round}: training loss is {loss}")

    arrays = ArrayRecord({key: Array(value) for key, value in adapter_state(model).items()})
    metrics = MetricRecord(
        {"train_loss": float(loss), "learning_rate": learning_rate, "num-examples": len(dataset)}
    )
    return Message(RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=msg)
