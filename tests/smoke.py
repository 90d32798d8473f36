"""Helpers shared by the end-to-end tests: train a rendered baseline and check the result."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from testkit.flower import LocalSuperLink, RunOutcome
from testkit.render import SMOKE_OVERRIDES, install, render


def train_rendered(
    superlink: LocalSuperLink, tmp_path: Path, answers: dict, data_dir: Path, **overrides: object
) -> tuple[RunOutcome, Path]:
    """Render with `answers`, install, run through `flwr run`; return the outcome and results dir."""
    project = render(tmp_path / "rendered", **answers)
    install(project, tmp_path / "site")
    results = tmp_path / "results"
    outcome = superlink.run(project, {
        **SMOKE_OVERRIDES,
        "static.dataset.name": str(data_dir),
        "train.results-dir": str(results),
        **overrides,
    })
    return outcome, results


def final_adapter(results: Path, server_round: int) -> Path:
    """The single run's `peft_<round>` folder."""
    adapters = sorted(results.glob(f"*/peft_{server_round}"))
    assert len(adapters) == 1, f"expected one peft_{server_round} under {results}, found {adapters}"
    return adapters[0]


def assert_trained(adapter_dir: Path, base_model_dir: Path, expected_modules: set[str]) -> None:
    """The adapter loads onto its base model, adapts `expected_modules`, and B moved off zero."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    weights = load_file(adapter_dir / "adapter_model.safetensors")
    b_matrices = {key: value for key, value in weights.items() if ".lora_B." in key}
    assert b_matrices, "the adapter holds no LoRA B matrices"
    assert any(value.abs().sum() > 0 for value in b_matrices.values()), "all B matrices are still zero"
    adapted = {key.split(".lora_")[0].rsplit(".", 1)[-1] for key in weights}
    assert adapted == expected_modules
    base = AutoModelForCausalLM.from_pretrained(base_model_dir)
    model = PeftModel.from_pretrained(base, adapter_dir)
    assert {
        name.rsplit(".", 1)[-1] for name, module in model.named_modules() if hasattr(module, "lora_A")
    } == expected_modules
    with torch.no_grad():
        logits = model(torch.tensor([[1, 2, 3]])).logits
    assert torch.isfinite(logits).all()
