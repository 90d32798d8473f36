"""FedProx on the client: mu/2 ||w - w_global||^2 keeps the adapter near the global one; mu = 0
trains exactly as FedAvg's plain trainer."""

from __future__ import annotations

import tempfile

import numpy as np
import pytest
from trl import SFTTrainer

from testkit.render import SMOKE_OVERRIDES

from .run_config import rendered_run_config


@pytest.fixture(scope="module")
def client_round(rendered_package, tiny_model, flashcards_dir):
    """Train one round of partition 0 from a fixed global adapter with a given trainer."""
    client = rendered_package("client_app")
    model_module = rendered_package("modeling.loading")
    settings = rendered_package("settings").read_settings(rendered_run_config(rendered_package, **{
        **SMOKE_OVERRIDES, "model.name": str(tiny_model("llama")), "static.dataset.name": str(flashcards_dir),
        "train.training-arguments.optim": "adamw_torch", "model.lora.peft-lora-r": 4,
    }))
    model, tokenizer, initial = client.loaded_model(settings)
    rng = np.random.default_rng(0)
    global_state = {key: value + rng.normal(0, 0.01, value.shape).astype(np.float32)
                    for key, value in initial.items()}
    partition = rendered_package("dataset").load_partition(str(flashcards_dir), "medical", 0, 2)
    examples = partition.select(client.training_rows(settings, 1, 0, len(partition)))

    def train(proximal_mu: float | None) -> dict[str, np.ndarray]:
        model_module.load_adapter_state(model, global_state)
        if proximal_mu is None:  # FedAvg's plain trainer
            with tempfile.TemporaryDirectory() as output_dir:
                SFTTrainer(model=model, args=client.sft_config(settings, 1e-3, output_dir),
                           train_dataset=examples, processing_class=tokenizer).train()
        else:
            client.train_adapter(model, tokenizer, settings, examples, 1e-3, proximal_mu)
        return model_module.adapter_state(model)

    def distance(state: dict[str, np.ndarray]) -> float:
        return float(np.sqrt(sum(((state[key] - global_state[key]) ** 2).sum() for key in global_state)))

    return train, distance


def test_a_large_proximal_mu_keeps_the_adapter_near_the_global_one(client_round):
    train, distance = client_round
    free, held = distance(train(0.0)), distance(train(500.0))
    assert free > 0 and held < 0.5 * free, (free, held)


def test_proximal_mu_zero_is_fedavg(client_round):
    train, _ = client_round
    fedavg, zero = train(None), train(0.0)
    assert all(np.array_equal(fedavg[key], zero[key]) for key in fedavg)
