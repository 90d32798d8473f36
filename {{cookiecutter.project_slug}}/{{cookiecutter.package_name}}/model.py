"""Base model loading, LoRA/DoRA adapters, adapter state and the learning-rate schedule."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Mapping

import numpy as np
import torch
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
from transformers import AutoConfig, AutoModelForCausalLM, BitsAndBytesConfig

from .lora_targets import ALL_LINEAR, peft_target_modules
from .settings import LoraSettings, RunSettings


class TargetModulesError(ValueError):
    """The configured LoRA target modules do not fit the model."""


def compute_dtype(settings: RunSettings) -> torch.dtype:
    """The dtype the precision answer asks for: bfloat16 or float16."""
    return torch.bfloat16 if settings.bf16 else torch.float16


def quantization_config(settings: RunSettings) -> BitsAndBytesConfig:
    """bitsandbytes settings for `model.quantization` (4 or 8 bits)."""
    if settings.quantization == 4:
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=compute_dtype(settings),
        )
    if settings.quantization == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    raise ValueError(
        f"model.quantization = {settings.quantization} is not supported; use 4 or 8"
    )


def attention_implementation() -> str | None:
    """FlashAttention 2 when it is installed and a GPU is present, else the model's default."""
    if torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return None


def load_base_model(settings: RunSettings) -> torch.nn.Module:
    """Load the quantized base model, ready for k-bit training."""
    device = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(
        settings.model_name,
        quantization_config=quantization_config(settings),
        dtype=compute_dtype(settings),
        device_map={"": device},
        attn_implementation=attention_implementation(),
        trust_remote_code=settings.trust_remote_code,
    )
    return prepare_model_for_kbit_training(
        model,
        use_gradient_checkpointing=settings.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
    )


def lora_config(settings: RunSettings, use_dora: bool | None = None) -> LoraConfig:
    """The PEFT adapter config; `use_dora` overrides the configured choice."""
    return adapter_config(settings.lora, settings.model_name, use_dora)


def adapter_config(lora: LoraSettings, model_name: str, use_dora: bool | None = None) -> LoraConfig:
    """The PEFT adapter config of `lora` on `model_name`; `use_dora` overrides its choice."""
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=peft_target_modules(lora.target_modules),
        use_dora=lora.use_dora if use_dora is None else use_dora,
        bias="none",
        task_type="CAUSAL_LM",
        base_model_name_or_path=model_name,
    )


def linear_layer_names(model: torch.nn.Module) -> list[str]:
    """Distinct last name parts of the model's linear layers (LoRA candidates)."""
    return sorted(
        {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
         if isinstance(module, torch.nn.Linear) and name}
    )


def check_target_modules(model: torch.nn.Module, target_modules: str) -> None:
    """Raise `TargetModulesError` naming every target that matches no layer."""
    targets = peft_target_modules(target_modules)
    if targets == ALL_LINEAR:
        return
    names = [name for name, _ in model.named_modules()]
    missing = [
        target for target in targets
        if not any(name == target or name.endswith("." + target) for name in names)
    ]
    if missing:
        raise TargetModulesError(
            f"model.lora.target-modules: {', '.join(missing)} match no layer of "
            f"{model.config.model_type!r}; its linear layers are: "
            f"{', '.join(linear_layer_names(model))}"
        )


def _restore_int8_scales(module: torch.nn.Module, _inputs: tuple) -> None:
    """Give an 8-bit weight back the row scales its layer state holds.

    On the CPU, PEFT's DoRA dequantizes 8-bit weights by copying the parameter, and the
    copy loses its scales (`SCB`); the next forward would then read `None` and crash.
    """
    if module.weight.SCB is None and module.state.SCB is not None:
        module.weight.SCB = module.state.SCB


def build_peft_model(settings: RunSettings) -> torch.nn.Module:
    """Load the base model and wrap it with a fresh LoRA/DoRA adapter."""
    base = load_base_model(settings)
    check_target_modules(base, settings.lora.target_modules)
    model = get_peft_model(base, lora_config(settings))
    if settings.quantization == 8 and settings.lora.use_dora and not torch.cuda.is_available():
        from bitsandbytes.nn import Linear8bitLt

        for module in model.modules():
            if isinstance(module, Linear8bitLt):
                module.register_forward_pre_hook(_restore_int8_scales)
    return model


def adapter_state(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """The adapter's weights as float32 NumPy arrays, keyed as PEFT saves them."""
    return {
        key: value.detach().to(device="cpu", dtype=torch.float32).numpy()
        for key, value in get_peft_model_state_dict(model).items()
    }


def load_adapter_state(model: torch.nn.Module, state: Mapping[str, np.ndarray]) -> None:
    """Copy adapter weights into the model; keys the state lacks keep their value."""
    tensors = {key: torch.from_numpy(np.asarray(value)) for key, value in state.items()}
    set_peft_model_state_dict(model, tensors)


def adapter_shapes(
    model_name: str, lora: LoraSettings, trust_remote_code: bool
) -> dict[str, tuple[int, ...]]:
    """The shape of every LoRA A and B matrix, keyed as PEFT saves them, from the model's
    config alone (no base weights; DoRA magnitudes are left out)."""
    config = AutoConfig.from_pretrained(model_name, trust_remote_code=trust_remote_code)
    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    check_target_modules(skeleton, lora.target_modules)
    peft_model = get_peft_model(skeleton, adapter_config(lora, model_name, use_dora=False))
    return {key: tuple(value.shape) for key, value in get_peft_model_state_dict(peft_model).items()}


def initial_adapter_state(settings: RunSettings) -> dict[str, np.ndarray]:
    """Initial LoRA A/B matrices built from the model's config alone (no base weights).

    A is drawn as PEFT draws it (Kaiming-uniform, bound 1/sqrt(fan_in)) from a seeded
    generator, B starts at zero. DoRA magnitudes depend on the base weights, so each
    client computes them itself until the first aggregate carries them.
    """
    shapes = adapter_shapes(settings.model_name, settings.lora, settings.trust_remote_code)
    generator = torch.Generator().manual_seed(settings.seed)
    state = {}
    for key in sorted(shapes):
        shape = shapes[key]
        if ".lora_A." in key:
            bound = 1.0 / math.sqrt(shape[1])
            tensor = torch.empty(shape).uniform_(-bound, bound, generator=generator)
        else:
            tensor = torch.zeros(shape)
        state[key] = tensor.numpy()
    return state


def cosine_annealing(current_round: int, total_rounds: int, lr_max: float, lr_min: float) -> float:
    """Learning rate of a round: cosine from `lr_max` (round 0) to `lr_min` (last round)."""
    progress = math.pi * current_round / total_rounds
    return lr_min + 0.5 * (lr_max - lr_min) * (1.0 + math.cos(progress))
