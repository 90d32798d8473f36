"""Which layers LoRA/DoRA adapts, per model family (the one table of them), and the answers.

Import-light on purpose: the template resolves `auto` with it before any dependency is
installed. A family with a list gets that list; any other model keeps `auto`, which
`targets.py` resolves from the model's structure when the run starts. Families whose hub
names a broader pattern would claim (MoE, hybrid and multimodal checkpoints of a dense
family's maker) have a row of their own that keeps `auto`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ALL_LINEAR = "all-linear"
AUTO = "auto"

# Sub-modules whose outputs pass no gradient back, so an adapter in them never trains: the
# sparse-attention indexer (DeepSeek V3.2, GLM-5, Dots 3) only picks, by top-k, the keys each
# query attends to.
NO_GRADIENT_MODULES = ("indexer",)

# Architectures that cannot run quantized with an adapter under transformers 5.24 and
# bitsandbytes, so neither the 4-bit clients nor the leaderboard's 4-bit evaluation can run them.
NOT_QUANTIZABLE = {
    "mamba": "transformers' Mamba multiplies by dt_proj's weight directly, which bitsandbytes packs",
    "longcat_flash": "transformers quantizes its router, which it keeps in float32 by a name "
                     "(`classifier.weight`) its quantized loading does not match",
    "rwkv": "transformers rescales RWKV's quantized layers in place at inference, which fails "
            "once PEFT wraps them",
}

_UNFUSED = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_FUSED = ("qkv_proj", "o_proj", "gate_up_proj", "down_proj")

# family -> (transformers model_type values, pattern of hub model names, target modules or
# AUTO). Patterns are tried in this order on the lower-cased name after the owner.
FAMILIES: dict[str, tuple[tuple[str, ...], str, tuple[str, ...] | str]] = {
    "qwen-moe-hybrid": (
        ("qwen2_moe", "qwen3_moe", "qwen3_next", "qwen3_5", "qwen3_5_text", "qwen3_5_moe",
         "qwen3_5_moe_text"),
        r"qwen.*(moe|next|-a\d+(\.\d+)?b)|qwen-?3\.5", AUTO,
    ),
    "llama4": (("llama4", "llama4_text"), r"llama-?4", AUTO),
    "phi3": (("phi3",), r"(^|[^a-z])phi-?[34](?!.*moe)", _FUSED),
    "qwen3": (("qwen3",), r"qwen-?3", _UNFUSED),
    "qwen2": (("qwen2",), r"qwen|qwq", _UNFUSED),
    "gemma3": (("gemma3", "gemma3_text"), r"gemma-?3|medgemma", _UNFUSED),
    "gemma2": (("gemma2",), r"gemma-?2", _UNFUSED),
    "mistral": (("mistral",), r"mistral|ministral", _UNFUSED),
    "llama": (("llama", "smollm3"), r"llama|smollm", _UNFUSED),
}


def family_from_model_type(model_type: str) -> str | None:
    """Return the family whose transformers `model_type` this is, if known."""
    for family, (model_types, _, _) in FAMILIES.items():
        if model_type in model_types:
            return family
    return None


def detect_family(base_model: str) -> str | None:
    """Recognise the family from a local directory's config.json or a hub id."""
    config_file = Path(base_model).expanduser() / "config.json"
    if config_file.is_file():
        model_type = json.loads(config_file.read_text(encoding="utf-8")).get("model_type", "")
        return family_from_model_type(str(model_type))
    name = base_model.rstrip("/").split("/")[-1].lower()
    for family, (_, pattern, _) in FAMILIES.items():
        if re.search(pattern, name):
            return family
    return None


def resolve_target_modules(base_model: str, answer: str) -> str:
    """Turn an answer (`auto`, `all-linear` or a comma list) into the config value."""
    answer = answer.strip()
    if answer.lower() == AUTO:
        family = detect_family(base_model)
        targets = FAMILIES[family][2] if family else AUTO
        return targets if targets == AUTO else ",".join(targets)
    if answer.lower() == ALL_LINEAR:
        return ALL_LINEAR
    return ",".join(parse_module_list(answer))


def parse_module_list(value: str) -> list[str]:
    """Split a comma-separated module list, dropping blanks around names."""
    return [name.strip() for name in value.split(",") if name.strip()]
