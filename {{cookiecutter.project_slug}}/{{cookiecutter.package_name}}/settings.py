"""Typed view of the run config in `[tool.flwr.app.config]`, the only place run values live."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TRAINING_ARGUMENTS_PREFIX = "train.training-arguments."
TRANSPORT_DTYPES = ("float32", "float16")
STRATEGY_NAMES = ("fedavg", "fedprox", "fedavgm", "fedadam", "fedyogi", "flexlora")


@dataclass(frozen=True)
class LoraSettings:
    """Adapter shape and placement."""

    r: int
    alpha: int
    dropout: float
    use_dora: bool
    target_modules: str
    target_experts: bool  # also the fused expert weights of a MoE


@dataclass(frozen=True)
class StrategySettings:
    """The aggregation strategy and its parameters (each used by the strategies named)."""

    name: str
    proximal_mu: float  # fedprox
    server_learning_rate: float  # fedavgm; eta of fedadam and fedyogi
    server_momentum: float  # fedavgm
    beta_1: float  # fedadam, fedyogi
    beta_2: float  # fedadam, fedyogi
    tau: float  # fedadam, fedyogi


@dataclass(frozen=True)
class RunSettings:
    """Everything a ClientApp or ServerApp reads from the run config."""

    model_name: str
    quantization: int
    gradient_checkpointing: bool
    lora: LoraSettings
    seq_length: int
    learning_rate_max: float
    learning_rate_min: float
    save_every_round: int
    num_server_rounds: int
    fraction_train: float
    fraction_evaluate: float
    dataset_name: str
    challenge: str
    results_dir: str
    seed: int
    training_arguments: dict[str, Any]
    reuse_model: bool
    transport_dtype: str
    resume: bool
    min_train_replies: int
    trust_remote_code: bool
    strategy: StrategySettings
    dynamic_data_seed: bool
    validation_fraction: float
    allow_over_budget: bool  # start even when the projected communication exceeds the budget

    @property
    def bf16(self) -> bool:
        """Whether the model computes in bfloat16 (otherwise float16)."""
        return bool(self.training_arguments.get("bf16", False))


def training_arguments(run_config: dict[str, Any]) -> dict[str, Any]:
    """Return `train.training-arguments.*` as keyword arguments (`-` becomes `_`)."""
    return {
        key[len(TRAINING_ARGUMENTS_PREFIX) :].replace("-", "_"): value
        for key, value in run_config.items()
        if key.startswith(TRAINING_ARGUMENTS_PREFIX)
    }


def read_settings(run_config: dict[str, Any]) -> RunSettings:
    """Build `RunSettings` from Flower's flat run config (keys joined by dots)."""
    return RunSettings(
        model_name=str(run_config["model.name"]),
        quantization=int(run_config["model.quantization"]),
        gradient_checkpointing=bool(run_config["model.gradient-checkpointing"]),
        lora=LoraSettings(
            r=int(run_config["model.lora.peft-lora-r"]),
            alpha=int(run_config["model.lora.peft-lora-alpha"]),
            dropout=float(run_config["model.lora.peft-lora-dropout"]),
            use_dora=bool(run_config["model.lora.peft-use-dora"]),
            target_modules=str(run_config["model.lora.target-modules"]),
            target_experts=bool(run_config["model.lora.target-experts"]),
        ),
        seq_length=int(run_config["train.seq-length"]),
        learning_rate_max=float(run_config["train.learning-rate-max"]),
        learning_rate_min=float(run_config["train.learning-rate-min"]),
        save_every_round=int(run_config["train.save-every-round"]),
        num_server_rounds=int(run_config["num-server-rounds"]),
        fraction_train=float(run_config["strategy.fraction-train"]),
        fraction_evaluate=float(run_config["strategy.fraction-evaluate"]),
        dataset_name=str(run_config["static.dataset.name"]),
        challenge=str(run_config["static.challenge"]),
        results_dir=str(run_config["train.results-dir"]),
        seed=int(run_config["train.seed"]),
        training_arguments=training_arguments(run_config),
        reuse_model=bool(run_config["model.reuse-across-rounds"]),
        transport_dtype=str(run_config["strategy.transport-dtype"]),
        resume=bool(run_config["train.resume"]),
        min_train_replies=int(run_config["strategy.min-train-replies"]),
        trust_remote_code=bool(run_config["model.trust-remote-code"]),
        strategy=StrategySettings(
            name=str(run_config["strategy.name"]),
            proximal_mu=float(run_config["strategy.proximal-mu"]),
            server_learning_rate=float(run_config["strategy.server-learning-rate"]),
            server_momentum=float(run_config["strategy.server-momentum"]),
            beta_1=float(run_config["strategy.beta-1"]),
            beta_2=float(run_config["strategy.beta-2"]),
            tau=float(run_config["strategy.tau"]),
        ),
        dynamic_data_seed=bool(run_config["train.dynamic-data-seed"]),
        validation_fraction=float(run_config["train.validation-fraction"]),
        allow_over_budget=bool(run_config["strategy.allow-over-budget"]),
    )
