"""The supported answer combinations, declared once for the render and smoke tests."""

from __future__ import annotations

import itertools

# A public hub id per model family, with the target modules `auto` must give it.
UNFUSED = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
FUSED = "qkv_proj,o_proj,gate_up_proj,down_proj"
FAMILY_MODELS = {
    "llama": ("meta-llama/Llama-3.1-8B-Instruct", UNFUSED),
    "smollm2": ("HuggingFaceTB/SmolLM2-1.7B-Instruct", UNFUSED),
    "mistral": ("mistralai/Mistral-7B-v0.3", UNFUSED),
    "qwen2": ("Qwen/Qwen2.5-7B-Instruct", UNFUSED),
    "qwen3": ("Qwen/Qwen3-8B", UNFUSED),
    "phi3": ("microsoft/Phi-3.5-mini-instruct", FUSED),
    "phi4": ("microsoft/Phi-4-mini-instruct", FUSED),
    "gemma2": ("google/gemma-2-9b-it", UNFUSED),
    "gemma3": ("google/gemma-3-4b-it", UNFUSED),
}

# family x LoRA/DoRA x 4/8-bit x bf16/fp16
RENDER_MATRIX = [
    {"base_model": model, "peft_use_dora": dora, "quantization": bits, "bf16": bf16}
    for (model, _), dora, bits, bf16 in itertools.product(
        FAMILY_MODELS.values(), (False, True), ("4", "8"), (True, False)
    )
]
OPTIMIZERS = ["paged_adamw_8bit", "adamw_torch", "adamw_bnb_8bit", "paged_adamw_32bit", "adafactor", "sgd"]
SCHEDULERS = ["constant", "linear", "cosine", "constant_with_warmup"]
RENDER_MATRIX += [{"optimizer": name} for name in OPTIMIZERS]
RENDER_MATRIX += [{"lr_scheduler_type": name} for name in SCHEDULERS]

# One tiny model per family (transformers model_type), together covering every switch value:
# DoRA and LoRA, 4 and 8 bits, bf16 and fp16, each optimizer and scheduler, checkpointing off.
SMOKE_MATRIX = {
    "llama": {"optimizer": "paged_adamw_8bit", "lr_scheduler_type": "constant"},
    "mistral": {"peft_use_dora": True, "quantization": "8", "bf16": False, "optimizer": "adamw_torch",
                "lr_scheduler_type": "linear"},
    "qwen2": {"quantization": "8", "optimizer": "adamw_bnb_8bit", "lr_scheduler_type": "cosine",
              "transport_dtype": "float16",
              "gradient_checkpointing": False},
    "qwen3": {"peft_use_dora": True, "bf16": False, "optimizer": "paged_adamw_32bit",
              "lr_scheduler_type": "constant_with_warmup"},
    "phi3": {"peft_use_dora": True, "quantization": "8", "bf16": False, "optimizer": "adafactor"},
    "gemma2": {"optimizer": "sgd"},
    "gemma3_text": {"peft_use_dora": True, "optimizer": "adamw_torch"},
}
SMOKE_TARGETS = {family: set((FUSED if family == "phi3" else UNFUSED).split(",")) for family in SMOKE_MATRIX}

# Every aggregation strategy renders (and trains: tests/test_strategies.py).
STRATEGIES = ["fedavg", "fedprox", "fedavgm", "fedadam", "fedyogi", "flexlora"]
