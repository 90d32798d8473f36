"""Every decoder architecture of the pinned transformers trains with the default answers.

The census (`testkit/architectures.py`, also run by `benchmarks/architectures.py`) runs each one
through the rendered package's own path; an MoE, a hybrid Mamba and a multimodal model also
train a federated round through `flwr run`.
"""

from __future__ import annotations

import gc

import pytest
from safetensors.torch import load_file

from testkit.architectures import (
    NOT_QUANTIZABLE,
    TOWER_KEY,
    build_tiny_architecture,
    census_architectures,
    census_entry,
    readme_rows,
)
from testkit.render import TEMPLATE_DIR
from testkit.tiny_models import train_tokenizer

from .run_config import rendered_run_config
from .smoke import assert_trained, final_adapter, train_rendered

CENSUS, EXCLUDED = census_architectures()
ROWS = {}  # census rows of this session, for the README check


@pytest.fixture(scope="module")
def census_tokenizer():
    return train_tokenizer()


@pytest.fixture(scope="module")
def frozen_objects():
    """The Trainer collects garbage after each run: leave the session's objects out of it."""
    gc.freeze()
    yield
    gc.unfreeze()


def test_the_census_is_the_causal_lm_mapping_less_the_printed_exclusions():
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    assert set(CENSUS) | set(EXCLUDED) == set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)
    assert not set(CENSUS) & set(EXCLUDED)
    assert len(CENSUS) >= 40
    categories = ("encoder-decoder", "non-chat", "audio/music", "not quantizable", "needs timm")
    assert all(reason.startswith(categories) for reason in EXCLUDED.values()), EXCLUDED


@pytest.mark.slow
@pytest.mark.parametrize("architecture", CENSUS)
def test_architecture_trains_and_reloads_with_the_default_answers(
    architecture, rendered_package, census_tokenizer, frozen_objects, tmp_path
):
    row = census_entry(architecture, rendered_package, rendered_run_config(rendered_package),
                       census_tokenizer, tmp_path)
    ROWS[architecture] = row
    assert row.trained, row.outcome


@pytest.mark.slow
@pytest.mark.parametrize("architecture", sorted(NOT_QUANTIZABLE))
def test_architectures_refused_as_not_quantizable_still_fail_quantized(
    architecture, rendered_package, census_tokenizer, frozen_objects, tmp_path
):
    row = census_entry(architecture, rendered_package, rendered_run_config(rendered_package),
                       census_tokenizer, tmp_path)
    assert not row.trained, f"{architecture} now trains and reloads quantized: take it out of NOT_QUANTIZABLE"


def test_the_readme_table_is_the_census():
    readme = readme_rows((TEMPLATE_DIR / "README.md").read_text(encoding="utf-8"))
    assert set(readme) == set(CENSUS), "run python benchmarks/architectures.py --write-readme"
    for architecture, row in ROWS.items():  # the rows this session's census gave
        assert readme[architecture] == (row.model_class, row.targets, row.adapter_tensors), architecture


# One end-to-end federated round each: architecture -> the layers `auto` adapts.
FEDERATED = {
    "qwen3_moe": {"q_proj", "k_proj", "v_proj", "o_proj"},
    "falcon_h1": {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "in_proj"},
    "gemma3": {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
}


@pytest.mark.slow
@pytest.mark.parametrize("architecture", FEDERATED)
def test_moe_hybrid_and_multimodal_models_train_a_federated_round(
    architecture, superlink, census_tokenizer, flashcards_dir, tmp_path
):
    model_dir = build_tiny_architecture(architecture, tmp_path / "model", census_tokenizer)
    outcome, results = train_rendered(superlink, tmp_path, {"base_model": str(model_dir)}, flashcards_dir,
                                      **{"num-server-rounds": 1})
    assert outcome.status == "finished:completed", outcome.output[-4000:]
    assert "LoRA adapts" in outcome.output
    adapter = final_adapter(results, 1)
    assert not [key for key in load_file(adapter / "adapter_model.safetensors") if TOWER_KEY.search(key)]
    assert_trained(adapter, model_dir, FEDERATED[architecture])
