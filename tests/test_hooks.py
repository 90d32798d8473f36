"""The hooks, imported and tested as modules."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from testkit.render import TEMPLATE_DIR

from .conftest import COOKIECUTTER_JSON, DEFAULT_ANSWERS


def load_hook(name: str):
    spec = importlib.util.spec_from_file_location(name, TEMPLATE_DIR / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pre_gen = load_hook("pre_gen_project")
post_gen = load_hook("post_gen_project")
CHOICES = {field: COOKIECUTTER_JSON[field] for field in pre_gen.CHOICES}


def default_answers(**changes) -> dict:
    answers = dict(DEFAULT_ANSWERS)
    answers.update(project_name="FlowerTune X", project_slug="flowertune-x", package_name="flowertune_x",
                   project_short_description="A baseline.")
    answers.update(changes)
    return answers


def test_default_answers_are_valid():
    pre_gen.validate(default_answers(), CHOICES)


@pytest.mark.parametrize(("field", "value"), [
    ("peft_lora_r", True), ("peft_lora_r", 2.5), ("max_steps", ""), ("quantization", 16),
    ("bf16", "maybe"), ("optimizer", "adam"), ("lr_scheduler_type", "step"), ("license", "GPL"),
    ("min_lr", "1e-3"), ("max_lr", "inf"), ("fraction_fit", "nan"), ("num_gpus", True),
    ("project_slug", "x" * 33), ("package_name", "naïve"), ("base_model", "a/b/c"),
])
def test_bad_answers_name_their_field(field, value):
    with pytest.raises(pre_gen.AnswerError) as failure:
        pre_gen.validate(default_answers(**{field: value}), CHOICES)
    assert failure.value.field == field
    assert str(failure.value).startswith(f"{field} = {value!r}: ")


@pytest.mark.parametrize("value", [True, False, "true", "False", " TRUE "])
def test_booleans_accept_json_and_older_string_answers(value):
    assert pre_gen.boolean("bf16", value) is (str(value).strip().lower() == "true")


def test_quantization_accepts_the_number_of_older_answer_files():
    pre_gen.validate(default_answers(quantization=8), CHOICES)


def test_an_existing_absolute_model_directory_is_a_valid_base_model(tmp_path):
    pre_gen.check_base_model(str(tmp_path))
    with pytest.raises(pre_gen.AnswerError):
        pre_gen.check_base_model(str(tmp_path / "missing"))


def test_min_lr_equal_to_max_lr_is_allowed():
    pre_gen.validate(default_answers(max_lr="1e-4", min_lr="0.0001"), CHOICES)


def test_post_generation_hook_prints_the_next_steps():
    text = post_gen.next_steps(Path("/work/flowertune-x"), 20)
    assert "cd /work/flowertune-x" in text and "pip install -e ." in text
    assert "20 SuperNodes" in text and "config.toml" in text
    assert "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1 flwr run . --stream" in text
    assert "peft_<round>" in text
