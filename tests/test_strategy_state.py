"""A server optimizer's state goes into each checkpoint and comes back on resume."""

from __future__ import annotations

import numpy as np
import pytest

from .run_config import rendered_run_config

KEYS = ["m.lora_A.weight", "m.lora_B.weight", "m.lora_magnitude_vector"]


def strategy(rendered_package, tmp_path, name: str, model_dir):
    """The named strategy over a run config whose model can be read here (checkpoints write an
    adapter config, whose targets come from the model's structure)."""
    settings = rendered_package("settings").read_settings(
        rendered_run_config(rendered_package, **{"strategy.name": name, "model.name": str(model_dir)})
    )
    catalog = rendered_package("strategies.catalog")
    record = rendered_package("run_record").RunRecord(tmp_path / "run")
    tracker = rendered_package("communication").CommunicationTracker()
    return settings, catalog.build_strategy(settings, record, tracker, round_offset=0)


def arrays(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {key: rng.normal(size=(2, 3)).astype(np.float32) for key in KEYS}


@pytest.mark.parametrize("name, attributes", [("fedadam", ("m_t", "v_t")), ("fedyogi", ("m_t", "v_t")),
                                              ("fedavgm", ("momentum_vector",))])
def test_server_state_is_saved_with_the_checkpoint_and_restored(
    rendered_package, tiny_model, tmp_path, name, attributes
):
    settings, saving = strategy(rendered_package, tmp_path, name, tiny_model("llama"))
    communication, checkpoint = rendered_package("communication"), rendered_package("checkpoint")
    saving.current_arrays = communication.to_arrays(arrays(0), "float32") if name == "fedavgm" else arrays(0)
    for seed, attribute in enumerate(attributes, start=1):
        value = arrays(seed)
        setattr(saving, attribute, [value[k] for k in KEYS] if name == "fedavgm" else value)
    directory = checkpoint.save_adapter(
        communication.to_arrays(arrays(9), "float32"), settings, tmp_path / "run" / "peft_3", 1.0,
        saving.server_state(),
    )
    restored = checkpoint.read_checkpoint(directory)
    _, resumed = strategy(rendered_package, tmp_path, name, tiny_model("llama"))
    resumed.restore_server_state(restored.strategy_state)
    for seed, attribute in enumerate(attributes, start=1):
        value = getattr(resumed, attribute)
        if name == "fedavgm":
            value = dict(zip(KEYS, value, strict=True))
        assert set(value) == set(KEYS)
        assert all(np.array_equal(value[key], arrays(seed)[key]) for key in KEYS)


def test_strategies_without_server_state_save_none(rendered_package, tiny_model, tmp_path):
    for name in ("fedavg", "fedprox", "flexlora"):
        assert strategy(rendered_package, tmp_path, name, tiny_model("llama"))[1].server_state() == {}
