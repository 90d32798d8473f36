"""Adapter size on real MoE shapes: the default targets against `lora_target_experts = true`.

Builds the weightless skeletons of Mixtral-8x7B and Qwen3-30B-A3B from their published config
numbers (no download), resolves the default render's `auto` targets on them with and without
the experts (`model.lora.target-experts`), and counts the adapter PEFT builds at the default
rank 32. Prints, per model and answer, the adapted layers, the adapter's parameters and float32
size, and what it costs on the Medical challenge's wire (2 of 20 clients a round, each receiving
and sending the adapter; 200,000 MB budget). The last line is

    mixtral_mb=<default> mixtral_experts_mb=<with experts> qwen3_moe_mb=<default> qwen3_moe_experts_mb=<...>
"""

from __future__ import annotations

import importlib
import sys
import tempfile
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit.render import render  # noqa: E402
from tests.run_config import flat  # noqa: E402

# The published config numbers (hub config.json of each checkpoint).
MODELS = {
    "mixtral": ("mistralai/Mixtral-8x7B-v0.1", "MixtralConfig", {
        "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 8, "num_local_experts": 8, "num_experts_per_tok": 2,
    }),
    "qwen3_moe": ("Qwen/Qwen3-30B-A3B", "Qwen3MoeConfig", {
        "vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 6144, "moe_intermediate_size": 768,
        "num_hidden_layers": 48, "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128,
        "num_experts": 128, "num_experts_per_tok": 8,
    }),
}
CLIENTS_PER_ROUND = 2  # Medical: 20 SuperNodes, fraction 0.1
BUDGET_MB = 200_000


def adapter_parameters(loading, settings) -> int:
    """Parameters of the adapter PEFT builds for `settings` on the model's skeleton."""
    from peft import get_peft_model
    from peft.utils import get_peft_model_state_dict

    skeleton = loading.model_skeleton(settings.model_name, False)
    model = get_peft_model(skeleton, loading.lora_config(settings, use_dora=False))
    return sum(value.numel() for value in get_peft_model_state_dict(model).values())


def main() -> None:
    import transformers

    transformers.logging.set_verbosity_error()
    sizes = {}
    with tempfile.TemporaryDirectory() as tmp:
        project = render(Path(tmp) / "rendered")
        sys.path.insert(0, str(project))
        package = project.name.replace("-", "_")
        loading = importlib.import_module(f"{package}.modeling.loading")
        read_settings = importlib.import_module(f"{package}.settings").read_settings
        pyproject = tomllib.loads((project / "pyproject.toml").read_text())
        run_config = flat(pyproject["tool"]["flwr"]["app"]["config"])
        for name, (hub_id, config_class, numbers) in MODELS.items():
            model_dir = Path(tmp) / name
            getattr(transformers, config_class)(**numbers).save_pretrained(model_dir)
            for experts in (False, True):
                settings = read_settings({
                    **run_config, "model.name": str(model_dir), "model.lora.target-modules": "auto",
                    "model.lora.target-experts": experts, "model.lora.peft-lora-dropout": 0.0,
                })
                parameters = adapter_parameters(loading, settings)
                megabytes = 4 * parameters / 2**20
                round_mb = 2 * CLIENTS_PER_ROUND * megabytes
                sizes[f"{name}{'_experts' if experts else ''}_mb"] = megabytes
                print(f"{hub_id} ({'with experts' if experts else 'default'}): "
                      f"{loading.lora_targets(settings).describe()}")
                print(f"  r={settings.lora.r}: {parameters / 1e6:,.1f} M parameters, {megabytes:,.0f} MB "
                      f"float32; {round_mb:,.0f} MB a round on the wire, "
                      f"{BUDGET_MB / round_mb:,.0f} rounds in the budget")
    print(" ".join(f"{key}={value:.0f}" for key, value in sizes.items()))


if __name__ == "__main__":
    main()
