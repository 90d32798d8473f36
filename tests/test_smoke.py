"""End to end: a rendered baseline trains through the real `flwr run` on a tiny Phi-3-style model."""

from __future__ import annotations

import json
import math

import pytest

from .smoke import assert_trained, final_adapter, train_rendered

pytestmark = pytest.mark.slow

FUSED = {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"}


def test_phi3_style_model_trains_two_rounds(superlink, tiny_model, flashcards_dir, tmp_path):
    model_dir = tiny_model("phi3")
    outcome, results = train_rendered(
        superlink, tmp_path, {"base_model": str(model_dir)}, flashcards_dir
    )
    assert outcome.status == "finished:completed", outcome.output[-4000:]
    assert "[ROUND 2/2]" in outcome.output
    assert "of the 200,000 MB budget" in outcome.output
    adapter = final_adapter(results, 2)
    rounds = json.loads((adapter.parent / "metrics.json").read_text())["rounds"]
    losses = [entry["train_loss"] for entry in rounds]
    assert len(losses) == 2 and all(math.isfinite(loss) for loss in losses), losses
    assert_trained(adapter, model_dir, FUSED)


def test_a_run_in_which_no_client_trained_fails(superlink, tiny_model, flashcards_dir, tmp_path):
    # An optimizer the trainer does not know: every client fails before its first step.
    outcome, results = train_rendered(
        superlink, tmp_path, {"base_model": str(tiny_model("llama"))}, flashcards_dir,
        **{"train.training-arguments.optim": "no_such_optimizer"},
    )
    assert outcome.status == "finished:failed", outcome.output[-4000:]
    assert "no client trained successfully" in outcome.output
    assert not list(results.glob("*/peft_*")), "an untrained adapter was saved"


def test_data_without_flashcard_columns_stops_before_training(superlink, tiny_model, tmp_path):
    bad_data = tmp_path / "bad-data"
    bad_data.mkdir()
    (bad_data / "train.jsonl").write_text(
        "".join(json.dumps({"question": f"q{i}", "answer": "a"}) + "\n" for i in range(8))
    )
    outcome, _ = train_rendered(superlink, tmp_path, {"base_model": str(tiny_model("llama"))}, bad_data)
    assert outcome.status == "finished:failed"
    assert "the data lacks column(s) input, output (it has question, answer)" in outcome.output
    assert "[ROUND 1" not in outcome.output
