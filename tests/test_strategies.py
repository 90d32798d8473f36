"""Every strategy renders and trains through `flwr run`; FedAdam's moments survive a resume."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from safetensors.numpy import load_file

from testkit.flower import LocalSuperLink
from testkit.render import SMOKE_OVERRIDES

from .run_config import rendered_run_config
from .smoke import assert_trained, final_adapter, train_rendered

pytestmark = pytest.mark.slow

UNFUSED = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
# strategy -> (extra answers, run-config overrides): together DoRA, float16 transport, validation loss
RUNS = {
    "fedavg": ({}, {}),
    "fedprox": ({"__proximal_mu": 0.5}, {}),
    "fedavgm": ({"__server_momentum": 0.5}, {}),
    "fedadam": ({}, {"strategy.fraction-evaluate": 1.0}),
    "fedyogi": ({"transport_dtype": "float16"}, {}),
    "flexlora": ({"peft_use_dora": "true", "transport_dtype": "float16"}, {}),
}
SERVER_STATE = {"fedavgm": {"momentum_vector"}, "fedadam": {"m_t", "v_t"}, "fedyogi": {"m_t", "v_t"}}


def assert_flexlora_factors(weights: dict[str, np.ndarray], rank: int) -> None:
    """Each module's saved factors are FlexLoRA's: B'^T B' = A' A'^T = S, diagonal, rank r."""
    for key in (k for k in weights if ".lora_B." in k):
        b = weights[key].astype(np.float64)
        a = weights[key.replace(".lora_B.", ".lora_A.")].astype(np.float64)
        assert b.shape[1] == a.shape[0] == rank
        gram_b, gram_a = b.T @ b, a @ a.T
        scale = np.abs(gram_b).max()
        assert scale > 0, f"{key} is still zero"
        assert np.allclose(gram_b - np.diag(np.diag(gram_b)), 0, atol=1e-4 * scale), key
        assert np.allclose(np.diag(gram_b), np.diag(gram_a), rtol=1e-3, atol=1e-5 * scale), key


def expected_first_batches(rendered_package, data_dir, overrides: dict, server_round: int) -> dict:
    """Each node's first batch of a round as `training_rows` computes it, in this process."""
    config = rendered_run_config(rendered_package, **{**SMOKE_OVERRIDES, **overrides})
    settings = rendered_package("settings").read_settings(config)
    batch = int(config["train.training-arguments.per-device-train-batch-size"])
    load_partition, client = rendered_package("dataset").load_partition, rendered_package("client_app")
    return {
        str(node): client.training_rows(
            settings, server_round, node, len(load_partition(str(data_dir), "medical", node, 2))
        )[:batch].tolist()
        for node in (0, 1)
    }


@pytest.mark.parametrize("name", list(RUNS))
def test_every_strategy_trains_through_flwr_run(
    name, superlink, tiny_model, flashcards_dir, rendered_package, tmp_path
):
    answers, overrides = RUNS[name]
    model_dir = tiny_model("llama")
    outcome, results = train_rendered(
        superlink, tmp_path, {"base_model": str(model_dir), "strategy": name, **answers}, flashcards_dir,
        **overrides,
    )
    assert outcome.status == "finished:completed", outcome.output[-4000:]
    adapter = final_adapter(results, 2)
    assert_trained(adapter, model_dir, UNFUSED)
    rounds = json.loads((adapter.parent / "metrics.json").read_text())["rounds"]
    assert [entry["clients"] for entry in rounds] == [2, 2]
    # train.dynamic-data-seed (default on): each node's first batch changes from round to round
    first, second = (entry["first_batches"] for entry in rounds)
    assert set(first) == set(second) == {"0", "1"} and all(first[p] != second[p] for p in first)
    assert [first, second] == [expected_first_batches(rendered_package, flashcards_dir, overrides, r)
                               for r in (1, 2)]

    state_file = adapter / "strategy_state.safetensors"
    if name in SERVER_STATE:
        state = load_file(state_file)
        assert {key.split("/")[0] for key in state} == SERVER_STATE[name]
        assert all(np.isfinite(value).all() for value in state.values())
    else:
        assert not state_file.exists()
    if name == "flexlora":
        weights = load_file(adapter / "adapter_model.safetensors")
        assert any("lora_magnitude_vector" in key for key in weights)
        assert_flexlora_factors(weights, rank=32)
    if name == "fedadam":
        assert all(e["eval_loss"] is not None and math.isfinite(e["eval_loss"]) and e["eval_clients"] == 2
                   for e in rounds), outcome.output[-6000:]
        resume_fedadam(flashcards_dir, tmp_path, results, adapter)
        third = json.loads((adapter.parent / "metrics.json").read_text())["rounds"][2]
        # the resumed round trains on what an uninterrupted run would have
        expected = expected_first_batches(rendered_package, flashcards_dir, overrides, 3)
        assert third["first_batches"] == expected


def resume_fedadam(flashcards_dir, tmp_path, results, adapter) -> None:
    """Resume the finished FedAdam run for a third round: it continues from the saved moments."""
    saved = load_file(adapter / "strategy_state.safetensors")
    project = next((tmp_path / "rendered").iterdir())
    with LocalSuperLink(tmp_path / "home-resume") as link:
        link.start(cwd=tmp_path)
        outcome = link.run(project, {
            **SMOKE_OVERRIDES, "strategy.fraction-evaluate": 1.0, "num-server-rounds": 3,
            "train.resume": True,
            "static.dataset.name": str(flashcards_dir), "train.results-dir": str(results),
        })
    assert outcome.status == "finished:completed", outcome.output[-4000:]
    assert "Restored the strategy's v_t" in outcome.output
    resumed = load_file(adapter.parent / "peft_3" / "strategy_state.safetensors")
    # v_3 = beta_2 v_2 + (1 - beta_2) delta_3^2 >= beta_2 v_2 only when v_2 was restored
    for key, v_2 in ((k, v) for k, v in saved.items() if k.startswith("v_t/")):
        assert np.all(resumed[key] >= 0.99 * v_2 * (1 - 1e-5)), key
    assert any(np.abs(saved[k]).max() > 0 for k in saved if k.startswith("v_t/"))
