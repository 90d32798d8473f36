"""Every model family and every switch value trains through the real `flwr run`."""

from __future__ import annotations

import pytest

from .smoke import assert_trained, final_adapter, train_rendered
from .variants import SMOKE_MATRIX, SMOKE_TARGETS

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("family", SMOKE_MATRIX)
def test_family_variant_trains(family, superlink, tiny_model, flashcards_dir, tmp_path):
    model_dir = tiny_model(family)
    answers = {"base_model": str(model_dir), **SMOKE_MATRIX[family]}
    outcome, results = train_rendered(superlink, tmp_path, answers, flashcards_dir)
    assert outcome.status == "finished:completed", outcome.output[-4000:]
    assert_trained(final_adapter(results, 2), model_dir, SMOKE_TARGETS[family])


def test_target_modules_matching_no_layer_stop_the_run_naming_the_layers(
    superlink, tiny_model, flashcards_dir, tmp_path
):
    answers = {"base_model": str(tiny_model("llama")), "lora_target_modules": "q_proj,qkv_proj"}
    outcome, results = train_rendered(superlink, tmp_path, answers, flashcards_dir)
    assert outcome.status == "finished:failed"
    assert ("model.lora.target-modules: qkv_proj match no layer of 'llama' that LoRA can adapt"
            in outcome.output)
    assert "its layers are: down_proj, gate_proj, k_proj, o_proj, q_proj, up_proj, v_proj" in outcome.output
    assert not list(results.glob("*/peft_*"))
