"""LoRA targets chosen from a model's structure: the language model's projections, nothing else."""

from __future__ import annotations

import re

import pytest

from testkit.architectures import tiny_config
from testkit.render import render
from testkit.tiny_models import train_tokenizer

from .run_config import flat


@pytest.fixture(scope="module")
def skeleton():
    """Factory: the weightless skeleton of a tiny model of an architecture."""
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = train_tokenizer()

    def build(model_type: str):
        with torch.device("meta"):
            return AutoModelForCausalLM.from_config(tiny_config(model_type, tokenizer))

    return build


def adapted(model, targets) -> set[str]:
    """The module names the targets' regular expressions select."""
    return {name for name, _ in model.named_modules()
            if re.fullmatch(targets.modules, name) and not re.fullmatch(targets.exclude, name)}


def test_a_dense_model_gets_its_seven_projections_and_no_head(rendered_package, skeleton):
    model = skeleton("llama")
    targets = rendered_package("modeling.targets").resolve_targets(model, "auto", False)
    assert targets.names == ("down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj")
    names = adapted(model, targets)
    assert len(names) == 7 * model.config.num_hidden_layers and "lm_head" not in names
    assert targets.parameters == ()


def test_a_moe_adapts_attention_only_and_its_experts_when_asked(rendered_package, skeleton):
    model = skeleton("qwen3_moe")
    resolve = rendered_package("modeling.targets").resolve_targets
    assert resolve(model, "auto", False).names == ("k_proj", "o_proj", "q_proj", "v_proj")
    assert resolve(model, "auto", False).parameters == ()
    assert resolve(model, "auto", True).parameters == ("experts.down_proj", "experts.gate_up_proj")


def test_a_hybrid_mamba_adapts_no_layer_its_kernels_read(rendered_package, skeleton):
    model = skeleton("falcon_h1")
    names = adapted(model, rendered_package("modeling.targets").resolve_targets(model, "auto", False))
    assert any(name.endswith("mamba.in_proj") for name in names)
    assert not [name for name in names if name.endswith(("out_proj", "conv1d"))]


def test_a_multimodal_model_adapts_its_language_model_only(rendered_package, skeleton):
    model = skeleton("gemma3")
    resolve = rendered_package("modeling.targets").resolve_targets
    targets = resolve(model, "q_proj,k_proj,v_proj,o_proj", False)
    names = adapted(model, targets)
    assert names and all(name.startswith("model.language_model.layers.") for name in names)
    assert any(re.fullmatch(targets.exclude, name) for name, _ in model.named_modules() if "vision" in name)


def test_listed_names_that_are_experts_are_refused_with_the_fix(rendered_package, skeleton):
    targets = rendered_package("modeling.targets")
    with pytest.raises(targets.TargetModulesError, match=r"gate_proj.*match no layer of 'qwen3_moe'.*"
                       r"fused experts: leave them out; model.lora.target-experts = true"):
        targets.resolve_targets(skeleton("qwen3_moe"), "q_proj,gate_proj", False)
    with pytest.raises(targets.TargetModulesError, match="'llama' has no fused expert weights; set it"):
        targets.resolve_targets(skeleton("llama"), "auto", True)


@pytest.mark.parametrize(("dropout", "dora", "message"), [
    (0.075, False, "model.lora.peft-lora-dropout = 0.075: must be 0 with model.lora.target-experts = true"),
    (0.0, True, "model.lora.peft-use-dora = true: must be false with model.lora.target-experts = true"),
])
def test_experts_refuse_dropout_and_dora(rendered_package, dropout, dora, message):
    targets = rendered_package("modeling.targets")
    with pytest.raises(targets.TargetModulesError, match=re.escape(message)):
        targets.check_expert_answers(True, dropout, dora)


def test_the_experts_answer_renders_and_refuses_dropout(tmp_path):
    import tomllib

    from cookiecutter.exceptions import FailedHookException

    project = render(tmp_path / "ok", lora_target_experts=True, lora_dropout=0.0)
    config = flat(tomllib.loads((project / "pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"])
    assert config["model.lora.target-experts"] is True
    with pytest.raises(FailedHookException, match="lora_dropout = .*must be 0 when lora_target_experts"):
        render(tmp_path / "refused", lora_target_experts=True)
