"""The layers LoRA adapts, chosen from the model's structure (a skeleton built from its config).

Only the language model's decoder layers are adapted: the longest layer lists nearest to its
input embeddings. Its output head, vision and audio towers and projectors lie outside them.
Inside:
- `all-linear` takes every linear layer, a comma list those whose last name part it names;
- `auto` takes every linear layer but routers and gates: layers with one output per expert of
  their decoder layer, or a single output;
- linear layers with fewer than 16 inputs mix a few coefficients (Gemma 3n's AltUp, whose
  weights the model reads and clamps directly) and are left out;
- linear layers with a forward of their own (DeepSeek V4's grouped projection) are left out: PEFT's
  LoRA layer would treat them as plain ones;
- layers in a module that passes no gradient back (`NO_GRADIENT_MODULES`: a sparse-attention
  indexer) are never adapted;
- in a mixer with a depthwise convolution (Mamba, gated linear attention) only the projections
  that read the hidden state are adapted: the Mamba kernels read the weights of the others
  directly, so a LoRA beside them would be ignored (PEFT refuses `out_proj` of Mamba models);
- names that PEFT's transformers-v5 conversion turns into a MoE's fused experts (`gate_proj`,
  `up_proj`, `down_proj` of Qwen-style MoEs, `w1`..`w3` of Mixtral-style ones) are left out,
  dense and shared MLPs of that name included: PEFT would adapt the experts in their place;
- layers whose adapter weights PEFT's loading would rename away (so that the leaderboard's
  `PeftModel.from_pretrained` would not load them back) are left out;
- fused expert weights (3-D parameters) are adapted only with `model.lora.target-experts`,
  through PEFT's `target_parameters`, which allows no dropout and no DoRA.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from transformers.pytorch_utils import Conv1D

from .lora_targets import ALL_LINEAR, AUTO, NO_GRADIENT_MODULES, parse_module_list

LINEAR_TYPES = (torch.nn.Linear, Conv1D)
# A linear layer with fewer inputs mixes a few coefficients (Gemma 3n's AltUp), far below any
# hidden, head or rank size of a language model.
COEFFICIENT_INPUTS = 16
PROJECTION, ROUTER, KERNEL_READ, NO_GRADIENT, OWN_FORWARD, COEFFICIENTS = (
    "projection", "router", "read by a mixer kernel", "no gradient", "a forward of its own", "coefficients"
)


class TargetModulesError(ValueError):
    """The configured LoRA targets do not fit the model."""


@dataclass(frozen=True)
class LoraTargets:
    """What PEFT adapts: `modules` and `exclude` are regular expressions over module names."""

    modules: str
    exclude: str
    parameters: tuple[str, ...]
    names: tuple[str, ...]  # distinct last name parts of the adapted layers

    def describe(self) -> str:
        """One line for the log: the adapted layers' names and the expert weights."""
        experts = f"; expert weights {', '.join(self.parameters)}" if self.parameters else ""
        return f"{', '.join(self.names)}{experts}"


def check_expert_answers(target_experts: bool, dropout: float, use_dora: bool) -> None:
    """Raise `TargetModulesError` when adapting the experts meets settings PEFT refuses for them."""
    if target_experts and dropout != 0:
        raise TargetModulesError(
            f"model.lora.peft-lora-dropout = {dropout}: must be 0 with model.lora.target-experts = true "
            "(PEFT adapts expert weights without dropout)"
        )
    if target_experts and use_dora:
        raise TargetModulesError(
            "model.lora.peft-use-dora = true: must be false with model.lora.target-experts = true "
            "(PEFT adapts expert weights with plain LoRA only)"
        )


def decoder_layer_lists(model: torch.nn.Module) -> list[str]:
    """Names of the language model's layer lists: the longest of the module lists nearest to its
    input embeddings, under the module that holds them (or the closest one above that has any)."""
    embeddings = model.get_input_embeddings()
    path = next(name for name, module in model.named_modules() if module is embeddings).split(".")
    while path:
        path.pop()
        level = [(".".join(path), model.get_submodule(".".join(path)))]
        while level:
            lists = {name: module for name, module in level
                     if isinstance(module, torch.nn.ModuleList) and len(module)}
            if lists:
                longest = max(map(len, lists.values()))
                return sorted(name for name, module in lists.items() if len(module) == longest)
            level = [(f"{name}.{child_name}" if name else child_name, child)
                     for name, module in level for child_name, child in module.named_children()
                     if child is not embeddings]
    raise TargetModulesError(f"{model.config.model_type!r}: no list of decoder layers under its embeddings")


def features(module: torch.nn.Module) -> tuple[int, int]:
    """Input and output size of a linear layer (transformers' Conv1D stores its weight transposed)."""
    if isinstance(module, Conv1D):
        return module.weight.shape[0], module.nf
    return module.in_features, module.out_features


def acts_as_linear(module: torch.nn.Module) -> bool:
    """Whether a linear layer maps (..., in) to (..., out) as a plain one does: a subclass with a
    forward of its own may not (DeepSeek V4's grouped projection); checked on the meta device."""
    if type(module).forward in (torch.nn.Linear.forward, Conv1D.forward):
        return True
    in_features, out_features = features(module)
    try:
        with torch.no_grad():
            output = module(torch.empty(3, 5, in_features, device=module.weight.device))
    except (RuntimeError, ValueError, TypeError, IndexError):
        return False
    return isinstance(output, torch.Tensor) and tuple(output.shape) == (3, 5, out_features)


def is_depthwise_conv(module: torch.nn.Module) -> bool:
    return isinstance(module, torch.nn.Conv1d) and 1 < module.groups == module.in_channels


def expert_weights(layer: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """The fused expert weights of a decoder layer: its 3-D parameters outside convolutions."""
    return {
        f"{name}.{parameter_name}" if name else parameter_name: parameter
        for name, module in layer.named_modules()
        if not isinstance(module, torch.nn.modules.conv._ConvNd)
        for parameter_name, parameter in module.named_parameters(recurse=False)
        if parameter.ndim == 3
    }


def linear_layer_roles(model: torch.nn.Module) -> dict[str, str]:
    """Every linear layer of the decoder layers, by full name: a projection, a router (one output
    per expert, or one output), a layer whose weight a mixer's kernel reads directly, one in a
    module that passes no gradient back, a subclass with a forward of its own (PEFT's LoRA layer
    would add to it as to a plain linear layer) or a layer of a few coefficients."""
    hidden_size = model.get_input_embeddings().weight.shape[1]
    roles = {}
    for list_name in decoder_layer_lists(model):
        for index, layer in enumerate(model.get_submodule(list_name)):
            per_expert = {1} | {weight.shape[0] for weight in expert_weights(layer).values()}
            mixers = [name for name, module in layer.named_modules()
                      if any(is_depthwise_conv(child) for child in module.children())]
            for name, module in layer.named_modules():
                if not isinstance(module, LINEAR_TYPES):
                    continue
                in_features, out_features = features(module)
                in_mixer = any(not mixer or name.startswith(mixer + ".") for mixer in mixers)
                if not acts_as_linear(module):
                    role = OWN_FORWARD
                elif in_features < COEFFICIENT_INPUTS:
                    role = COEFFICIENTS
                elif any(part in NO_GRADIENT_MODULES for part in name.split(".")):
                    role = NO_GRADIENT
                elif out_features in per_expert:
                    role = ROUTER
                elif in_mixer and in_features != hidden_size:
                    role = KERNEL_READ
                else:
                    role = PROJECTION
                roles[f"{list_name}.{index}.{name}"] = role
    return roles


def names_peft_maps_to_experts(model: torch.nn.Module, names: Iterable[str]) -> set[str]:
    """The layer names among `names` that PEFT's transformers-v5 conversion would turn into fused
    expert weights of this model, or refuses for being half of a fused pair (found by letting it
    convert a config that lists each name)."""
    from peft import LoraConfig
    from peft.utils.transformers_weight_conversion import (
        convert_peft_config_for_transformers,
        get_model_conversion_mapping,
    )

    conversions = get_model_conversion_mapping(model)
    rerouted = set()
    for name in names:
        probe = LoraConfig(target_modules=[name])
        try:
            convert_peft_config_for_transformers(probe, model=model, conversions=conversions)
        except ValueError:  # "Cannot convert PEFT target(s) gate_proj without also targeting up_proj"
            rerouted.add(name)
            continue
        if name not in set(probe.target_modules or ()):
            rerouted.add(name)
    return rerouted


def modules_peft_would_not_reload(model: torch.nn.Module, modules: str, exclude: str) -> set[str]:
    """The adapted modules whose adapter weights PEFT's loading would rename away (its
    transformers-v5 conversion of state dicts), so `PeftModel.from_pretrained` would leave them
    untrained: found by converting the state dict of a rank-1 adapter on a copy of the skeleton."""
    from peft import LoraConfig, get_peft_model
    from peft.utils import get_peft_model_state_dict
    from peft.utils.transformers_weight_conversion import convert_peft_adapter_state_dict_for_transformers

    config = LoraConfig(r=1, target_modules=modules, exclude_modules=exclude)
    probe = get_peft_model(copy.deepcopy(model), config)
    saved = {key: torch.zeros(value.shape) for key, value in get_peft_model_state_dict(probe).items()}
    loaded = convert_peft_adapter_state_dict_for_transformers(
        model=probe, peft_config=probe.peft_config["default"], adapter_state_dict=dict(saved)
    )
    return {key.removeprefix("base_model.model.").split(".lora_")[0] for key in set(saved) - set(loaded)}


def last_part(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def names_pattern(all_names: Iterable[str], chosen: set[str]) -> str:
    """A regular expression that matches exactly the `chosen` names among `all_names`.

    Layer numbers become `\\d+` where that matches no other name, else the names are spelled
    out; names that differ only in their last part share one group.
    """
    def general(name: str) -> tuple[str, ...]:
        return tuple(r"\d+" if part.isdigit() else re.escape(part) for part in name.split("."))

    groups: dict[tuple[str, ...], set[str]] = {}
    for name in all_names:
        groups.setdefault(general(name), set()).add(name)
    by_prefix: dict[str, list[str]] = {}
    exact = []
    for key in sorted({general(name) for name in chosen}):
        if groups[key] <= chosen:
            by_prefix.setdefault(r"\.".join(key[:-1]), []).append(key[-1])
        else:
            exact += [re.escape(name) for name in sorted(groups[key] & chosen)]
    patterns = [
        (f"{prefix}\\." if prefix else "") + (lasts[0] if len(lasts) == 1 else f"(?:{'|'.join(lasts)})")
        for prefix, lasts in by_prefix.items()
    ]
    return "|".join(patterns + exact)


def expert_parameter_names(model: torch.nn.Module) -> tuple[str, ...]:
    """PEFT `target_parameters` for the fused expert weights: `<module>.<parameter>` where that
    names no other parameter, else the full names."""
    experts = {
        f"{list_name}.{index}.{name}"
        for list_name in decoder_layer_lists(model)
        for index, layer in enumerate(model.get_submodule(list_name))
        for name in expert_weights(layer)
    }
    parameters = [name for name, _ in model.named_parameters()]
    names = set()
    for full in experts:
        short = ".".join(full.split(".")[-2:])
        matches = {name for name in parameters if name == short or name.endswith("." + short)}
        names.add(short if matches <= experts else full)
    return tuple(sorted(names))


def resolve_targets(model: torch.nn.Module, answer: str, target_experts: bool) -> LoraTargets:
    """The LoRA targets of the `model.lora.target-modules` value (`auto`, `all-linear` or a comma
    list) and `model.lora.target-experts` on this model, or a `TargetModulesError` naming the fix."""
    model_type = model.config.model_type
    roles = linear_layer_roles(model)
    listed = answer.strip().lower() not in (AUTO, ALL_LINEAR)
    wanted = parse_module_list(answer) if listed else []
    rerouted = names_peft_maps_to_experts(model, {last_part(name) for name in roles} | set(wanted))
    usable = {name for name, role in roles.items()
              if role in (PROJECTION, ROUTER) and last_part(name) not in rerouted}
    if answer.strip().lower() == AUTO:
        chosen = {name for name in usable if roles[name] == PROJECTION}
    elif answer.strip().lower() == ALL_LINEAR:
        chosen = usable
    else:
        chosen = {name for name in usable if last_part(name) in wanted}
        missing = [name for name in wanted if name not in {last_part(name) for name in chosen}]
        if missing:
            hint, experts = "", sorted(rerouted & set(missing))
            if experts:
                hint = (f" (PEFT would adapt {', '.join(experts)} of {model_type!r} as its fused experts: "
                        "leave them out; model.lora.target-experts = true adapts the experts)")
            layers = ", ".join(sorted({last_part(name) for name in usable}))
            raise TargetModulesError(
                f"model.lora.target-modules: {', '.join(missing)} match no layer of {model_type!r} that LoRA "
                f"can adapt; its layers are: {layers}{hint}"
            )
    layer_lists = "|".join(re.escape(name) for name in decoder_layer_lists(model))
    exclude = f"(?!(?:{layer_lists})\\.).*"
    all_names = [name for name, _ in model.named_modules()]
    if chosen:
        chosen -= modules_peft_would_not_reload(model, names_pattern(all_names, chosen), exclude)
    if not chosen:
        raise TargetModulesError(
            f"model.lora.target-modules = {answer!r} adapts no layer of {model_type!r}"
        )
    parameters = expert_parameter_names(model) if target_experts else ()
    if target_experts and not parameters:
        raise TargetModulesError(
            f"model.lora.target-experts = true, but {model_type!r} has no fused expert weights; "
            "set it to false"
        )
    return LoraTargets(
        modules=names_pattern(all_names, chosen),
        exclude=exclude,
        parameters=parameters,
        names=tuple(sorted({last_part(name) for name in chosen})),
    )
