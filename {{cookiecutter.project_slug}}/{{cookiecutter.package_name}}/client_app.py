"""ClientApp: fine-tune the global adapter on this node's partition for one round."""

from __future__ import annotations

import gc
import math
import os
import tempfile
import warnings

import numpy as np
import torch
from flwr.app import Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from transformers import AutoTokenizer
from trl import SFTConfig, SFTTrainer

from .communication import to_arrays, to_state
from .dataset import load_partition
from .model import adapter_state, build_peft_model, cosine_annealing, load_adapter_state
from .run_record import peak_rss_mb
from .settings import RunSettings, read_settings

app = ClientApp()

# The loaded model of this process (reused across rounds and partitions) and its load count.
_LOADED: dict[str, tuple[torch.nn.Module, object, dict[str, np.ndarray]]] = {}
_BASE_MODEL_LOADS = 0


def _model_key(settings: RunSettings) -> str:
    return repr((settings.model_name, settings.quantization, settings.bf16,
                 settings.gradient_checkpointing, settings.lora, settings.trust_remote_code))


def loaded_model(settings: RunSettings):
    """The PEFT model, its tokenizer and its freshly initialised adapter state."""
    global _BASE_MODEL_LOADS
    key = _model_key(settings)
    if key not in _LOADED:
        _LOADED.clear()
        model = build_peft_model(settings)
        _BASE_MODEL_LOADS += 1
        tokenizer = AutoTokenizer.from_pretrained(
            settings.model_name, trust_remote_code=settings.trust_remote_code
        )
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        _LOADED[key] = (model, tokenizer, adapter_state(model))
    return _LOADED[key]


def release_model() -> None:
    """Drop the loaded model and give its memory back (`model.reuse-across-rounds = false`)."""
    _LOADED.clear()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


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


def process_metrics() -> dict[str, float]:
    """This process's identity, base model loads and peak memory, for the run record."""
    cuda_peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0
    return {
        "process-id": os.getpid(),
        "base-model-loads": _BASE_MODEL_LOADS,
        "peak-rss-mb": peak_rss_mb(),
        "cuda-peak-mb": cuda_peak,
    }


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Train the received adapter on this partition and send it back."""
    settings = read_settings(context.run_config)
    server_round = int(msg.content["config"]["server-round"])
    model, tokenizer, initial_state = loaded_model(settings)
    load_adapter_state(model, initial_state)
    load_adapter_state(model, to_state(msg.content["arrays"]))

    dataset = load_partition(
        settings.dataset_name,
        settings.challenge,
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

    state = adapter_state(model)
    if not settings.reuse_model:
        release_model()
    arrays = to_arrays(state, settings.transport_dtype)
    metrics = MetricRecord({
        "train_loss": float(loss),
        "learning_rate": learning_rate,
        "num-examples": len(dataset),
        **process_metrics(),
    })
    return Message(RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=msg)
