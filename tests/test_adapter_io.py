"""The server's adapter arrays: initial state, transport, and checkpoints PEFT can load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from .run_config import rendered_run_config


@pytest.fixture(scope="module")
def settings(rendered_package, tiny_model):
    config = rendered_run_config(rendered_package, **{
        "model.name": str(tiny_model("phi3")), "model.gradient-checkpointing": False,
        "model.lora.peft-lora-r": 4, "model.lora.peft-lora-alpha": 8, "model.lora.peft-lora-dropout": 0.0,
        "model.lora.peft-use-dora": True,
        "model.lora.target-modules": "qkv_proj,o_proj,gate_up_proj,down_proj",
        "train.seq-length": 64, "train.learning-rate-max": 1e-3, "train.learning-rate-min": 1e-4,
        "train.save-every-round": 1, "train.seed": 0, "num-server-rounds": 2,
        "strategy.fraction-train": 1.0, "static.dataset.name": "unused",
    })
    return rendered_package("settings").read_settings(config)


def test_initial_adapter_needs_no_weights_and_fits_the_client_model(rendered_package, settings):
    model = rendered_package("modeling.loading")
    initial = model.initial_adapter_state(settings)
    client = model.build_peft_model(settings)
    client_state = model.adapter_state(client)
    assert set(initial) <= set(client_state)
    assert set(client_state) - set(initial) == {k for k in client_state if "magnitude" in k}
    for key, value in initial.items():
        assert value.shape == client_state[key].shape
        if ".lora_B." in key:
            assert not value.any()
        else:
            bound = 1 / np.sqrt(value.shape[1])
            assert np.abs(value).max() <= bound and value.std() > 0


def test_saved_checkpoint_gives_the_same_logits_as_the_client_model(rendered_package, settings, tmp_path):
    from peft import PeftModel

    model = rendered_package("modeling.loading")
    checkpoint = rendered_package("checkpoint")
    client = model.build_peft_model(settings)
    rng = np.random.default_rng(0)
    trained = {k: (v + rng.normal(0, 0.05, v.shape)).astype(np.float32)
               for k, v in model.adapter_state(client).items()}
    model.load_adapter_state(client, trained)
    arrays = rendered_package("communication").to_arrays(dict(trained), "float32")
    directory = checkpoint.save_adapter(arrays, settings, tmp_path / "peft_1", comm_total_mb=1.5)
    assert checkpoint.read_checkpoint(directory).round == 1

    loaded = PeftModel.from_pretrained(model.load_base_model(settings), directory)
    tokens = torch.tensor([[5, 17, 42, 99, 3]])
    client.eval()
    loaded.eval()
    with torch.no_grad():
        assert torch.allclose(client(tokens).logits, loaded(tokens).logits, atol=1e-5)


def test_float16_transport_halves_the_bytes_and_aggregates_in_float32(rendered_package):
    communication = rendered_package("communication")
    state = {"a.lora_A.weight": np.random.default_rng(1).normal(size=(8, 256)).astype(np.float32)}
    full = communication.to_arrays(dict(state), "float32")
    half = communication.to_arrays(dict(state), "float16")
    assert communication.in_dtype(full, "float32") is full
    assert half.count_bytes() < 0.55 * full.count_bytes()
    assert communication.to_state(half)["a.lora_A.weight"].dtype == np.float32


def test_a_damaged_checkpoint_is_named_and_skipped(rendered_package, settings, tmp_path, caplog):
    checkpoint = rendered_package("checkpoint")
    run_dir = tmp_path / "results" / "run"
    state = {"x.lora_A.weight": np.ones((2, 4), np.float32)}
    arrays = rendered_package("communication").to_arrays(state, "float32")
    checkpoint.save_adapter(arrays, settings, run_dir / "peft_1", comm_total_mb=1.0)
    damaged = checkpoint.save_adapter(arrays, settings, run_dir / "peft_2", comm_total_mb=2.0)
    (damaged / "adapter_model.safetensors").write_bytes(b"truncated")
    (run_dir / "peft_3.partial").mkdir()
    found = checkpoint.latest_checkpoint(tmp_path / "results")
    assert found.round == 1 and found.comm_total_mb == 1.0
    assert np.array_equal(found.state["x.lora_A.weight"], np.ones((2, 4), np.float32))
