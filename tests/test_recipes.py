"""The recipes render, and their answers land in the run config; the baselines are the official ones."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from cookiecutter.main import cookiecutter

from testkit.render import TEMPLATE_DIR

from .conftest import CHALLENGES, COOKIECUTTER_JSON, TEMPLATE_CHALLENGES
from .run_config import flat

RECIPES = sorted((TEMPLATE_DIR / "recipes").glob("*.yaml"))
ARGUMENTS = "train.training-arguments."
# answer -> (its key in [tool.flwr.app.config], how the config holds it)
CONFIG_KEYS = {
    "base_model": ("model.name", str),
    "challenge": ("static.challenge", str),
    "quantization": ("model.quantization", int),
    "peft_use_dora": ("model.lora.peft-use-dora", bool),
    "peft_lora_r": ("model.lora.peft-lora-r", int),
    "peft_lora_alpha": ("model.lora.peft-lora-alpha", int),
    "lora_dropout": ("model.lora.peft-lora-dropout", float),
    "lora_target_modules": ("model.lora.target-modules", str),
    "bf16": (ARGUMENTS + "bf16", bool),
    "tf32": (ARGUMENTS + "tf32", bool),
    "gradient_checkpointing": ("model.gradient-checkpointing", bool),
    "seq_length": ("train.seq-length", int),
    "per_device_train_batch_size": (ARGUMENTS + "per-device-train-batch-size", int),
    "accumulation_steps": (ARGUMENTS + "gradient-accumulation-steps", int),
    "max_steps": (ARGUMENTS + "max-steps", int),
    "max_lr": ("train.learning-rate-max", float),
    "min_lr": ("train.learning-rate-min", float),
    "optimizer": (ARGUMENTS + "optim", str),
    "lr_scheduler_type": (ARGUMENTS + "lr-scheduler-type", str),
    "strategy": ("strategy.name", str),
    "fraction_fit": ("strategy.fraction-train", float),
    "fraction_evaluate": ("strategy.fraction-evaluate", float),
    "num_server_rounds": ("num-server-rounds", int),
    "save_every_round": ("train.save-every-round", int),
}


def recipe(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["default_context"]


def rendered_config(path: Path, output: Path, **answers) -> dict:
    project = cookiecutter(str(TEMPLATE_DIR), no_input=True, config_file=str(path), output_dir=str(output),
                           extra_context=answers)
    pyproject = tomllib.loads((Path(project) / "pyproject.toml").read_text())
    return flat(pyproject["tool"]["flwr"]["app"]["config"])


def test_there_is_a_baseline_and_a_best_entry_recipe_per_challenge():
    expected = {f"{name}-{kind}" for name in CHALLENGES for kind in ("baseline", "best")}
    assert {path.stem for path in RECIPES} == expected


@pytest.mark.parametrize("path", RECIPES, ids=lambda path: path.stem)
def test_a_recipe_renders_and_its_answers_land_in_the_run_config(path, tmp_path):
    answers = recipe(path)
    assert set(answers) <= set(COOKIECUTTER_JSON), set(answers) - set(COOKIECUTTER_JSON)
    assert set(answers) - {"bf16", "tf32"} == set(CONFIG_KEYS) - {"bf16", "tf32"}
    config = rendered_config(path, tmp_path)
    for answer, value in answers.items():
        key, kind = CONFIG_KEYS[answer]
        assert config[key] == kind(value), (answer, key)
    assert config["static.challenge"] == path.stem.rsplit("-", 1)[0]


@pytest.mark.parametrize("path", RECIPES, ids=lambda path: path.stem)
def test_a_recipe_names_its_source_and_published_score(path):
    comments = "".join(line for line in path.read_text().splitlines(keepends=True) if line.startswith("#"))
    assert re.search(r"https://github\.com/\S+", comments)
    assert re.search(r"Published score \([^)]*\): .*average \d+\.\d\d", comments.replace("\n# ", " "))
    assert f"--config-file recipes/{path.name}" in comments


@pytest.mark.parametrize("challenge", CHALLENGES)
def test_the_baseline_recipe_is_the_official_baseline(challenge, tmp_path):
    path = TEMPLATE_DIR / "recipes" / f"{challenge}-baseline.yaml"
    config = rendered_config(path, tmp_path)
    official = {**TEMPLATE_CHALLENGES.OFFICIAL_BASELINE_CONFIG,
                "strategy.fraction-train": CHALLENGES[challenge].fraction_train}
    assert {key: config[key] for key in official} == official
    comments = path.read_text()
    assert f"average {CHALLENGES[challenge].baseline_average:.2f}" in comments


def test_answers_on_the_command_line_override_the_recipe(tmp_path):
    config = rendered_config(TEMPLATE_DIR / "recipes" / "medical-best.yaml", tmp_path, num_server_rounds=3)
    assert config["num-server-rounds"] == 3
    assert config["model.name"] == recipe(TEMPLATE_DIR / "recipes" / "medical-best.yaml")["base_model"]
