"""The default render: file tree, no leftover Jinja, config and README equal the answers."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import pytest

from testkit.render import render

from .conftest import COOKIECUTTER_JSON

DEFAULT_SLUG = "flowertune-mistral-7b-v0-3"
DEFAULT_PACKAGE = "flowertune_mistral_7b_v0_3"
PACKAGE_MODULES = {
    "__init__.py", "settings.py", "lora_targets.py", "model.py", "dataset.py",
    "client_app.py", "server_app.py", "checkpoint.py", "communication.py",
    "run_record.py", "leaderboard.py", "report.py",
    "eval.py", "eval_benchmarks.py", "eval_generation.py", "eval_scoring.py",
}


@pytest.fixture(scope="module")
def default_project(tmp_path_factory):
    return render(tmp_path_factory.mktemp("default"))


@pytest.fixture(scope="module")
def app_config(default_project):
    return tomllib.loads((default_project / "pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"]


def flat(config: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_default_render_has_the_expected_file_tree(default_project):
    assert default_project.name == DEFAULT_SLUG
    files = {str(path.relative_to(default_project)) for path in default_project.rglob("*") if path.is_file()}
    expected = {"pyproject.toml", "README.md", ".gitignore"} | {
        f"{DEFAULT_PACKAGE}/{module}" for module in PACKAGE_MODULES
    }
    assert files == expected


def test_no_leftover_jinja_in_any_rendered_file(default_project):
    for path in default_project.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"\{\{|\{%|\{#", text), f"leftover Jinja in {path}"


def test_rendered_config_equals_the_answers(app_config):
    config = flat(app_config)
    answers = COOKIECUTTER_JSON
    assert config["model.name"] == answers["base_model"]
    assert config["model.quantization"] == int(answers["quantization"][0])
    assert config["model.lora.peft-lora-r"] == answers["peft_lora_r"]
    assert config["model.lora.peft-lora-alpha"] == answers["peft_lora_alpha"]
    assert config["model.lora.peft-lora-dropout"] == answers["lora_dropout"]
    assert config["model.lora.peft-use-dora"] is answers["peft_use_dora"]
    assert config["model.gradient-checkpointing"] is answers["gradient_checkpointing"]
    assert config["train.learning-rate-max"] == answers["max_lr"]
    assert config["train.learning-rate-min"] == answers["min_lr"]
    assert config["train.save-every-round"] == answers["save_every_round"]
    assert config["train.seq-length"] == answers["seq_length"]
    arguments = "train.training-arguments."
    assert config[arguments + "per-device-train-batch-size"] == answers["per_device_train_batch_size"]
    assert config[arguments + "gradient-accumulation-steps"] == answers["accumulation_steps"]
    assert config[arguments + "max-steps"] == answers["max_steps"]
    assert config[arguments + "optim"] == answers["optimizer"][0]
    assert config[arguments + "lr-scheduler-type"] == answers["lr_scheduler_type"][0]
    assert config[arguments + "bf16"] is answers["bf16"]
    assert config[arguments + "tf32"] is answers["tf32"]
    assert config["strategy.fraction-train"] == answers["fraction_fit"]
    assert config["num-server-rounds"] == answers["num_server_rounds"]
    assert config["static.dataset.name"] == "flwrlabs/medical-meadow-medical-flashcards"
    assert config["model.lora.target-modules"] == "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"


def readme_table(project) -> dict[str, str]:
    rows = re.findall(r"^\| ([^|]+?) \| (.+?) \|$", (project / "README.md").read_text(), re.M)
    return {key: value for key, value in rows if key not in ("Setting", "---")}


def test_readme_states_the_same_values_as_the_config(default_project, app_config):
    config = flat(app_config)
    table = readme_table(default_project)
    arguments = "train.training-arguments."
    assert table["Base model"] == f"`{config['model.name']}`"
    assert table["Adapter"] == "LoRA"
    assert table["LoRA rank r / alpha / dropout"] == (
        f"{config['model.lora.peft-lora-r']} / {config['model.lora.peft-lora-alpha']} / "
        f"{config['model.lora.peft-lora-dropout']}"
    )
    assert table["Target modules"] == f"`{config['model.lora.target-modules']}`"
    assert table["Quantization"].startswith(f"{config['model.quantization']}-bit")
    assert table["Precision"] == "bf16"
    assert table["Optimizer"] == f"`{config[arguments + 'optim']}`"
    assert table["Per-device batch size"] == str(config[arguments + "per-device-train-batch-size"])
    assert table["Gradient accumulation steps"] == str(config[arguments + "gradient-accumulation-steps"])
    assert table["Local steps per round"] == str(config[arguments + "max-steps"])
    assert table["Rounds"] == str(config["num-server-rounds"])
    assert table["Fraction of clients training per round"] == str(config["strategy.fraction-train"])
    rates = re.search(r"from (\S+) \(maximum\) to (\S+) \(minimum\)", table["Learning rate"])
    assert float(rates[1]) == config["train.learning-rate-max"]
    assert float(rates[2]) == config["train.learning-rate-min"]
    assert "FedAvg" in table["Strategy"]
    assert table["Clients"].startswith("20 SuperNodes")
    readme = (default_project / "README.md").read_text()
    assert "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1 flwr run ." in readme
    assert "options.num-supernodes = 20" in readme


def test_flower_accepts_the_rendered_app(default_project):
    from flwr.cli.config_utils import load_and_validate
    from flwr.cli.utils import validate_project_name

    config, _warnings = load_and_validate(default_project / "pyproject.toml", check_module=False)
    validate_project_name(config["project"]["name"], "name")


def test_two_base_models_render_into_two_folders(tmp_path):
    first = render(tmp_path, base_model="Qwen/Qwen2.5-7B-Instruct")
    second = render(tmp_path, base_model="microsoft/Phi-4-mini-instruct")
    assert first != second and first.is_dir() and second.is_dir()


def test_rendered_project_installs_and_its_dependencies_are_this_stack(default_project, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(default_project)],
        check=True,
    )
    assert (target / DEFAULT_PACKAGE / "server_app.py").is_file()
    dry_run = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-build-isolation", str(default_project)],
        capture_output=True, text=True, check=True,
    )
    would_install = re.search(r"Would install (.*)", dry_run.stdout)
    assert would_install is not None
    assert would_install[1].split() == [f"{DEFAULT_SLUG}-1.0.0"], dry_run.stdout


def test_rendered_python_passes_ruff(default_project):
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=default_project,
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout
