"""Base model loading (4- or 8-bit on the clients, a weightless skeleton on the server), the
LoRA/DoRA adapter on it and the adapter's state."""

from __future__ import annotations

import functools
import importlib.util
import math
import warnings
from collections.abc import Mapping

import numpy as np
import torch
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
from transformers import AutoConfig, AutoModelForCausalLM, BitsAndBytesConfig
from transformers.quantizers.base import get_keys_to_not_convert

from ..settings import LoraSettings, RunSettings
from .targets import COEFFICIENT_INPUTS, LoraTargets, check_expert_answers, resolve_targets


def compute_dtype(settings: RunSettings) -> torch.dtype:
    """The dtype the precision answer asks for: bfloat16 or float16."""
    return torch.bfloat16 if settings.bf16 else torch.float16


def quantization_config(settings: RunSettings) -> BitsAndBytesConfig:
    """bitsandbytes settings for `model.quantization` (4 or 8 bits)."""
    unquantized = list(unquantized_modules(settings.model_name, settings.trust_remote_code))
    if settings.quantization == 4:
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=compute_dtype(settings),
            llm_int8_skip_modules=unquantized,
        )
    if settings.quantization == 8:
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=unquantized)
    raise ValueError(
        f"model.quantization = {settings.quantization} is not supported; use 4 or 8"
    )


def attention_implementation() -> str | None:
    """FlashAttention 2 when it is installed and a GPU is present, else the model's default."""
    if torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return None


def uses_gradient_checkpointing(model: torch.nn.Module, settings: RunSettings) -> bool:
    """Whether training checkpoints activations: when asked and the architecture can."""
    return settings.gradient_checkpointing and model.supports_gradient_checkpointing


def expose_backbone(model: torch.nn.Module) -> None:
    """Make `model.base_model` the decoder that holds the input embeddings, where the class names
    a prefix it lacks (Llama 4's text model: `language_model`, held as `model`): TRL's loss runs
    `base_model` and reads its hidden states."""
    if model.base_model is not model:
        return
    embeddings = model.get_input_embeddings()
    for name, child in model.named_children():
        if any(module is embeddings for module in child.modules()):
            model.base_model_prefix = name
            return


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
    expose_backbone(model)
    if settings.gradient_checkpointing and not model.supports_gradient_checkpointing:
        warnings.warn(f"{type(model).__name__} cannot checkpoint activations; training without "
                      "model.gradient-checkpointing", stacklevel=2)
    model = prepare_model_for_kbit_training(
        model,
        use_gradient_checkpointing=uses_gradient_checkpointing(model, settings),
        gradient_checkpointing_kwargs={"use_reentrant": False},
    )
    # non-reentrant checkpointing needs no gradient on the embeddings' output; the hook that
    # transformers adds for it anyway breaks models that add to that output in place (BLT)
    model.disable_input_require_grads()
    return model


def model_skeleton(model_name: str, trust_remote_code: bool) -> torch.nn.Module:
    """The model built from its config alone on the meta device: its structure, no weights."""
    config = AutoConfig.from_pretrained(model_name, trust_remote_code=trust_remote_code)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)


@functools.lru_cache(maxsize=4)
def unquantized_modules(model_name: str, trust_remote_code: bool) -> tuple[str, ...]:
    """The modules a client keeps in the compute dtype: those transformers keeps by default (the
    output head, tied weights) and the layers of a few coefficients (`COEFFICIENT_INPUTS`), a
    negligible share of the weights, which some models edit in place while training (Gemma 3n
    clamps its AltUp coefficients, which a 4-bit weight cannot take)."""
    skeleton = model_skeleton(model_name, trust_remote_code)
    small = {name for name, module in skeleton.named_modules()
             if isinstance(module, torch.nn.Linear) and module.in_features < COEFFICIENT_INPUTS}
    return tuple(sorted(set(get_keys_to_not_convert(skeleton)) | small))


@functools.lru_cache(maxsize=4)
def _resolved_targets(
    model_name: str, trust_remote_code: bool, answer: str, target_experts: bool
) -> LoraTargets:
    return resolve_targets(model_skeleton(model_name, trust_remote_code), answer, target_experts)


def lora_targets(settings: RunSettings) -> LoraTargets:
    """The layers (and expert weights) the adapter covers, from the model's structure."""
    lora: LoraSettings = settings.lora
    check_expert_answers(lora.target_experts, lora.dropout, lora.use_dora)
    return _resolved_targets(settings.model_name, settings.trust_remote_code, lora.target_modules,
                             lora.target_experts)


def lora_config(settings: RunSettings, use_dora: bool | None = None) -> LoraConfig:
    """The PEFT adapter config; `use_dora` overrides the configured choice."""
    return adapter_config(settings.lora, settings.model_name, settings.trust_remote_code, use_dora)


def adapter_config(
    lora: LoraSettings, model_name: str, trust_remote_code: bool, use_dora: bool | None = None
) -> LoraConfig:
    """The PEFT adapter config of `lora` on `model_name`; `use_dora` overrides its choice."""
    check_expert_answers(lora.target_experts, lora.dropout, lora.use_dora)
    targets = _resolved_targets(model_name, trust_remote_code, lora.target_modules, lora.target_experts)
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=targets.modules,
        exclude_modules=targets.exclude,
        target_parameters=list(targets.parameters) or None,
        use_dora=lora.use_dora if use_dora is None else use_dora,
        bias="none",
        task_type="CAUSAL_LM",
        base_model_name_or_path=model_name,
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
    config = lora_config(settings)
    model = get_peft_model(load_base_model(settings), config)
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
    skeleton = model_skeleton(model_name, trust_remote_code)
    peft_model = get_peft_model(skeleton, adapter_config(lora, model_name, trust_remote_code, use_dora=False))
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
