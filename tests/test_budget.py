"""The communication plan: Flower's byte count of each array, the arithmetic of a run, the
published figures of two leaderboard entries, the server's refusal and the README's figure."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord

from testkit.render import render

from .run_config import rendered_run_config

LLAMA_31_8B = {  # meta-llama/Llama-3.1-8B, as Llama3.1-Aloe-Beta-8B
    "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
}
QWEN25_7B = {  # Qwen/Qwen2.5-7B
    "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
    "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064,
}
SEVEN_PROJECTIONS = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"


@pytest.fixture(scope="module")
def budget(rendered_package):
    return rendered_package("budget")


@pytest.fixture(scope="module")
def lora(rendered_package):
    def make(r: int, targets: str, use_dora: bool = False):
        return rendered_package("settings").LoraSettings(r, 2 * r, 0.075, use_dora, targets, False)

    return make


def config_only_model(tmp_path, config_class: str, sizes: dict):
    """A model folder holding only a config.json: all the plan reads."""
    import transformers

    getattr(transformers, config_class)(**sizes).save_pretrained(tmp_path)
    return str(tmp_path)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_an_arrays_bytes_are_those_flower_counts(budget, dtype):
    shapes = {"base_model.model.layers.0.q_proj.lora_A.weight": (8, 64),
              "base_model.model.layers.0.q_proj.lora_B.weight": (64, 8),
              "base_model.model.layers.0.q_proj.lora_magnitude_vector": (64,),
              "x": (3, 5, 7)}
    record = ArrayRecord({key: Array(np.zeros(shape, dtype)) for key, shape in shapes.items()})
    assert budget.adapter_bytes(shapes, dtype) == record.count_bytes()


def test_dora_magnitudes_travel_from_the_first_reply_on(budget):
    shapes = {"m.q_proj.lora_A.weight": (4, 64), "m.q_proj.lora_B.weight": (32, 4)}
    full = budget.with_dora_magnitudes(shapes)
    assert full == {**shapes, "m.q_proj.lora_magnitude_vector": (32,)}
    assert budget.with_dora_magnitudes(full) == full  # a resumed run's arrays already have them
    first, later = budget.adapter_bytes(shapes, "float32"), budget.adapter_bytes(full, "float32")
    plan = budget.plan_communication(shapes, transport_dtype="float32", num_nodes=10, fraction_train=0.3,
                                     fraction_evaluate=0.2, rounds=4, use_dora=True)
    # 3 clients train, 2 evaluate; round 1 sends the adapter without the magnitudes
    expected = 3 * (first + later) + 3 * 3 * 2 * later + 4 * 2 * later
    assert plan.total_mb * 2**20 == pytest.approx(expected, abs=1e-6)
    assert (plan.train_clients, plan.evaluate_clients) == (3, 2)


@pytest.mark.parametrize(("num_nodes", "fraction", "clients"), [(20, 0.1, 2), (50, 0.1, 5), (10, 0.2, 2),
                                                                (2, 0.1, 1), (2, 1.0, 2)])
def test_clients_per_round_are_those_flower_samples(budget, num_nodes, fraction, clients):
    assert budget.clients_per_round(num_nodes, fraction) == clients


@pytest.mark.parametrize(("config_class", "sizes", "targets", "r", "num_nodes", "published_mb"), [
    # ZeroOne.AI's Medical entry (comm_cost.txt of its submission): 2 of 20 clients, 10 rounds
    ("LlamaConfig", LLAMA_31_8B, "q_proj,v_proj", 32, 20, 2080.93),
    # ZeroOne.AI's Finance entry: 5 of 50 clients, 10 rounds
    ("Qwen2Config", QWEN25_7B, SEVEN_PROJECTIONS, 32, 50, 30807.07),
], ids=["medical-best", "finance-best"])
def test_the_plan_of_a_published_recipe_is_its_published_communication(
    rendered_package, budget, lora, tmp_path, config_class, sizes, targets, r, num_nodes, published_mb
):
    shapes = rendered_package("modeling.loading").adapter_shapes(
        config_only_model(tmp_path, config_class, sizes), lora(r, targets), trust_remote_code=False
    )
    plan = budget.plan_communication(shapes, transport_dtype="float32", num_nodes=num_nodes,
                                     fraction_train=0.1, fraction_evaluate=0.0, rounds=10, use_dora=False)
    assert round(plan.total_mb, 2) == published_mb
    half = budget.plan_communication(shapes, transport_dtype="float16", num_nodes=num_nodes,
                                     fraction_train=0.1, fraction_evaluate=0.0, rounds=10, use_dora=False)
    assert half.total_mb == pytest.approx(plan.total_mb / 2, rel=1e-3)


def test_the_server_refuses_a_plan_over_the_budget_unless_allowed(rendered_package, caplog):
    server, read_settings = rendered_package("server_app"), rendered_package("settings").read_settings
    arrays = ArrayRecord({"m.q_proj.lora_A.weight": Array(np.zeros((256, 1024), "float32"))})  # 1 MB
    over = {"num-server-rounds": 60_000}  # 2 clients x 2 directions x 1 MB each round
    refusal = (r"^Refusing to start: the run would communicate 240,0\d\d MB, over the 200,000 MB budget "
               r".*num-server-rounds = 60000.*allow-over-budget = true to run anyway$")
    refused = read_settings(rendered_run_config(rendered_package, **over))
    with pytest.raises(server.SettingsError, match=refusal):
        server.communication_plan(refused, arrays, None, num_nodes=20)
    allow = {"strategy.allow-over-budget": True}
    allowed = read_settings(rendered_run_config(rendered_package, **over, **allow))
    with caplog.at_level(logging.WARNING):
        plan = server.communication_plan(allowed, arrays, None, num_nodes=20)
    assert plan.over_budget and "starting anyway" in caplog.text


def test_the_readme_shows_the_plan_of_a_local_model(rendered_package, budget, lora, tiny_model, tmp_path):
    model_dir = str(tiny_model("qwen2"))
    project = render(tmp_path, base_model=model_dir, num_server_rounds=7, transport_dtype="float16")
    loading = rendered_package("modeling.loading")
    shapes = loading.adapter_shapes(model_dir, lora(32, SEVEN_PROJECTIONS), False)
    plan = budget.plan_communication(shapes, transport_dtype="float16", num_nodes=20, fraction_train=0.1,
                                     fraction_evaluate=0.0, rounds=7, use_dora=False)
    readme = (project / "README.md").read_text()
    assert f"| Communication, projected | {plan.summary()} |" in readme
    assert "7 rounds x 2 of 20 clients x 2 directions" in readme


def test_the_readme_of_a_hub_model_says_when_the_plan_is_made(rendered_project):
    readme = (rendered_project("medical") / "README.md").read_text()
    assert "| Communication, projected | computed from the model's config when the run starts" in readme
    assert "`strategy.allow-over-budget = true`" in readme
    pyproject = (rendered_project("medical") / "pyproject.toml").read_text()
    assert "strategy.allow-over-budget = false" in pyproject
