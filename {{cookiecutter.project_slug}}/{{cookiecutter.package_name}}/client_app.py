"""ClientApp: fine-tune the global adapter on this node's partition; report its validation loss."""

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
from .dataset import keep_responses_within, load_partition, round_example_order, validation_rows
from .modeling.loading import adapter_state, build_peft_model, load_adapter_state
from .run_record import peak_rss_mb
from .settings import RunSettings, read_settings

app = ClientApp()

# The loaded model of this process (reused across rounds and partitions) and its load count.
_LOADED: dict[str, tuple[torch.nn.Module, object, dict[str, np.ndarray]]] = {}
_BASE_MODEL_LOADS = 0


def cosine_annealing(current_round: int, total_rounds: int, lr_max: float, lr_min: float) -> float:
    """Learning rate of a round: cosine from `lr_max` (round 0) to `lr_min` (last round)."""
    progress = math.pi * current_round / total_rounds
    return lr_min + 0.5 * (lr_max - lr_min) * (1.0 + math.cos(progress))


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
    """TRL settings of one round: constant learning rate, loss on the response only.

    Activations are checkpointed by the model itself (`load_base_model`, non-reentrant): TRL's own
    switch would also make the embeddings' outputs require a gradient, which breaks models that
    add to them in place (BLT). A MoE's load-balancing loss is off: its routers are frozen, so the
    loss could only move the adapters to rebalance routing that does not learn.
    """
    arguments = device_arguments(settings.training_arguments)
    arguments.update(
        output_dir=output_dir,
        learning_rate=learning_rate,
        max_length=settings.seq_length,
        completion_only_loss=True,
        gradient_checkpointing=False,
        router_aux_loss_coef=0.0,
        fp16=not settings.bf16 and not arguments.get("use_cpu", False),
        bf16=settings.bf16,
        save_strategy="no",
        report_to="none",
        seed=settings.seed,
        # the examples arrive in the order `training_rows` gives them
        train_sampling_strategy="sequential",
        per_device_eval_batch_size=arguments["per_device_train_batch_size"],
    )
    return SFTConfig(**arguments)


class ProximalSFTTrainer(SFTTrainer):
    """SFTTrainer whose loss adds FedProx's mu/2 * ||w - w_global||^2 over the trainable weights.

    The global weights are those the model holds when the trainer is built; mu = 0 adds nothing.
    """

    def __init__(self, *args, proximal_mu: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.proximal_mu = proximal_mu
        self.global_weights = {
            name: parameter.detach().clone()
            for name, parameter in self.model.named_parameters() if parameter.requires_grad
        } if proximal_mu else {}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        result = super().compute_loss(
            model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
        )
        if not self.proximal_mu:
            return result
        loss, outputs = result if return_outputs else (result, None)
        distance = sum(
            (parameter - self.global_weights[name]).pow(2).sum()
            for name, parameter in self.model.named_parameters() if name in self.global_weights
        )
        loss = loss + self.proximal_mu / 2 * distance
        return (loss, outputs) if return_outputs else loss


def training_rows(settings: RunSettings, server_round: int, partition_id: int, n: int) -> np.ndarray:
    """The partition rows a node trains on in a round, in training order.

    Validation rows are held out when the run evaluates (`strategy.fraction-evaluate` > 0); the
    order changes every round with `train.dynamic-data-seed`, else it is the same every round.
    """
    rows = np.arange(n)
    if settings.fraction_evaluate > 0:
        rows, _ = validation_rows(settings.seed, partition_id, n, settings.validation_fraction)
    order_round = server_round if settings.dynamic_data_seed else 0
    return rows[round_example_order(settings.seed, order_round, partition_id, len(rows))]


def train_adapter(model, tokenizer, settings: RunSettings, examples, learning_rate: float,
                  proximal_mu: float) -> float:
    """Train the model's adapter on `examples` in their order; return the training loss."""
    with tempfile.TemporaryDirectory() as output_dir:
        trainer = ProximalSFTTrainer(
            model=model,
            args=sft_config(settings, learning_rate, output_dir),
            train_dataset=examples,
            processing_class=tokenizer,
            proximal_mu=proximal_mu,
        )
        output = trainer.train()
    if output.global_step == 0:
        raise RuntimeError("no training step was taken: no example kept a response token "
                           "(is train.seq-length too short?)")
    return output.training_loss


def validation_loss(model, tokenizer, settings: RunSettings, examples) -> float:
    """The model's loss on `examples` (on the responses, as in training)."""
    with tempfile.TemporaryDirectory() as output_dir:
        trainer = SFTTrainer(
            model=model,
            args=sft_config(settings, settings.learning_rate_min, output_dir),
            train_dataset=examples,  # TRL requires one; only evaluated here
            eval_dataset=examples,
            processing_class=tokenizer,
        )
        return float(trainer.evaluate()["eval_loss"])


def process_metrics() -> dict[str, float]:
    """This process's identity, base model loads and peak memory, for the run record."""
    cuda_peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0
    return {
        "process-id": os.getpid(),
        "base-model-loads": _BASE_MODEL_LOADS,
        "peak-rss-mb": peak_rss_mb(),
        "cuda-peak-mb": cuda_peak,
    }


def global_model(settings: RunSettings, msg: Message):
    """The loaded model holding the global adapter the message carries, and its tokenizer."""
    model, tokenizer, initial_state = loaded_model(settings)
    load_adapter_state(model, initial_state)
    load_adapter_state(model, to_state(msg.content["arrays"]))
    return model, tokenizer


def node_partition(settings: RunSettings, context: Context):
    """This node's partition id and its prompt/completion examples."""
    partition_id = int(context.node_config["partition-id"])
    partition = load_partition(
        settings.dataset_name, settings.challenge, partition_id, int(context.node_config["num-partitions"])
    )
    return partition_id, partition


def fitted(partition, rows, tokenizer, settings: RunSettings):
    """The examples of `rows`, in that order, each within the sequence length."""
    return keep_responses_within(partition.select(rows), tokenizer, settings.seq_length)


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Train the received adapter on this partition and send it back."""
    settings = read_settings(context.run_config)
    config = msg.content["config"]
    server_round = int(config["server-round"])
    model, tokenizer = global_model(settings, msg)
    partition_id, partition = node_partition(settings, context)
    rows = training_rows(settings, server_round, partition_id, len(partition))
    learning_rate = cosine_annealing(
        server_round, settings.num_server_rounds,
        settings.learning_rate_max, settings.learning_rate_min,
    )
    # Flower's FedProx sends proximal-mu; every other strategy trains without the term
    proximal_mu = float(config.get("proximal-mu", 0.0))
    examples = fitted(partition, rows, tokenizer, settings)
    loss = train_adapter(model, tokenizer, settings, examples, learning_rate, proximal_mu)
    if not math.isfinite(loss):
        raise RuntimeError(f"round {server_round}: training loss is {loss}")

    state = adapter_state(model)
    if not settings.reuse_model:
        release_model()
    arrays = to_arrays(state, settings.transport_dtype)
    batch_size = int(settings.training_arguments["per_device_train_batch_size"])
    metrics = MetricRecord({
        "train_loss": float(loss),
        "learning_rate": learning_rate,
        "num-examples": len(rows),
        "partition-id": partition_id,
        "first-batch": [int(row) for row in rows[:batch_size]],
        **process_metrics(),
    })
    return Message(RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """The received global adapter's loss on this partition's held-out validation rows."""
    settings = read_settings(context.run_config)
    model, tokenizer = global_model(settings, msg)
    partition_id, partition = node_partition(settings, context)
    _, rows = validation_rows(settings.seed, partition_id, len(partition), settings.validation_fraction)
    loss = validation_loss(model, tokenizer, settings, fitted(partition, rows, tokenizer, settings))
    if not settings.reuse_model:
        release_model()
    metrics = MetricRecord({"eval_loss": loss, "num-examples": len(rows)})
    return Message(RecordDict({"metrics": metrics}), reply_to=msg)
