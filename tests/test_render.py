"""The default render and each challenge's: file tree, no leftover Jinja, config and README equal
the answers."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from testkit.render import TEMPLATE_DIR, render

from .conftest import CHALLENGES, DEFAULT_ANSWERS, TEMPLATE_PACKAGE_DIR
from .run_config import flat

DEFAULT_SLUG = "flowertune-mistral-7b-v0-3"
DEFAULT_PACKAGE = "flowertune_mistral_7b_v0_3"
# The default model's project folder for each challenge.
SLUGS = {
    "medical": DEFAULT_SLUG,
    "general-nlp": "ft-mistral-7b-v0-3-general-nlp",
    "finance": "ft-mistral-7b-v0-3-finance",
    "code": "flowertune-mistral-7b-v0-3-code",
}
PACKAGE_MODULES = {
    "__init__.py", "challenges.py", "settings.py", "dataset.py",
    "modeling/__init__.py", "modeling/lora_targets.py", "modeling/loading.py", "modeling/targets.py",
    "client_app.py", "server_app.py", "checkpoint.py", "communication.py",
    "run_record.py", "leaderboard.py", "report.py", "eval.py", "budget.py", "sweep.py", "submit.py",
}
# Evaluation modules every challenge keeps, beside its own.
SHARED_EVALUATION_MODULES = {"sweep_record.py"}
# The evaluation each challenge ships: its own module and the shared ones it uses, nothing else.
EVALUATION_MODULES = {
    "medical": {"__init__.py", "engine.py", "data.py", "text_tasks.py", "multiple_choice.py", "medical.py"},
    "general-nlp": {"__init__.py", "engine.py", "data.py", "text_tasks.py", "multiple_choice.py",
                    "general_nlp.py"},
    "finance": {"__init__.py", "engine.py", "data.py", "text_tasks.py", "finance.py"},
    # the Code evaluation (`evaluation/code/`) is checked by its own tests
    "code": {"__init__.py", "engine.py", "data.py"},
}
CODE_EVALUATION = "evaluation/code/"
# The aggregation strategies (issue 13) render unchanged for every challenge, whatever they hold.
STRATEGIES = "strategies"


@pytest.fixture(scope="module")
def default_project(rendered_project):
    return rendered_project("medical")


@pytest.fixture(scope="module")
def app_config(default_project):
    return tomllib.loads((default_project / "pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"]


def file_tree(project: Path) -> set[str]:
    return {path.relative_to(project).as_posix() for path in project.rglob("*") if path.is_file()}


def template_strategy_files() -> set[str]:
    folder = TEMPLATE_PACKAGE_DIR / STRATEGIES
    return {f"{STRATEGIES}/{path.relative_to(folder).as_posix()}" for path in folder.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts}


@pytest.mark.parametrize("challenge", CHALLENGES)
def test_each_challenge_renders_the_expected_file_tree(challenge, rendered_project):
    project = rendered_project(challenge)
    assert project.name == SLUGS[challenge]
    package = SLUGS[challenge].replace("-", "_")
    files = file_tree(project)
    code_evaluation = {name for name in files if name.startswith(f"{package}/{CODE_EVALUATION}")}
    assert bool(code_evaluation) is (challenge == "code")
    if challenge == "code":
        assert f"{package}/{CODE_EVALUATION}__init__.py" in code_evaluation
        files -= code_evaluation
    expected = {"pyproject.toml", "README.md", ".gitignore"} | {
        f"{package}/{module}"
        for module in (PACKAGE_MODULES | template_strategy_files() | {
            f"evaluation/{name}" for name in EVALUATION_MODULES[challenge] | SHARED_EVALUATION_MODULES
        })
    }
    assert files == expected


def test_the_expected_evaluation_modules_are_those_of_the_challenge_table():
    for name, challenge in CHALLENGES.items():
        modules = {challenge.evaluation_module, *challenge.evaluation_support}
        if name == "code":
            modules.discard("code")
        assert EVALUATION_MODULES[name] == {"__init__.py"} | {f"{module}.py" for module in modules}


def test_the_default_is_the_medical_challenge(default_project, app_config):
    assert DEFAULT_ANSWERS["challenge"] == "medical"
    assert default_project.name == DEFAULT_SLUG
    assert app_config["static"]["challenge"] == "medical"


@pytest.mark.parametrize("challenge", CHALLENGES)
def test_no_leftover_jinja_in_any_rendered_file(challenge, rendered_project):
    for path in rendered_project(challenge).rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"\{\{|\{%|\{#", text), f"leftover Jinja in {path}"


def test_rendered_config_equals_the_answers(app_config):
    config = flat(app_config)
    answers = DEFAULT_ANSWERS
    assert config["model.name"] == answers["base_model"]
    assert config["model.quantization"] == int(answers["quantization"])
    assert config["model.lora.peft-lora-r"] == int(answers["peft_lora_r"])
    assert config["model.lora.peft-lora-alpha"] == int(answers["peft_lora_alpha"])
    assert config["model.lora.peft-lora-dropout"] == float(answers["lora_dropout"])
    assert config["model.lora.peft-use-dora"] is (answers["peft_use_dora"] == "true")
    assert config["model.gradient-checkpointing"] is (answers["gradient_checkpointing"] == "true")
    assert config["train.learning-rate-max"] == float(answers["max_lr"])
    assert config["train.learning-rate-min"] == float(answers["min_lr"])
    assert config["train.save-every-round"] == int(answers["save_every_round"])
    assert config["train.seq-length"] == int(answers["seq_length"])
    arguments = "train.training-arguments."
    assert config[arguments + "per-device-train-batch-size"] == int(answers["per_device_train_batch_size"])
    assert config[arguments + "gradient-accumulation-steps"] == int(answers["accumulation_steps"])
    assert config[arguments + "max-steps"] == int(answers["max_steps"])
    assert config[arguments + "optim"] == answers["optimizer"]
    assert config[arguments + "lr-scheduler-type"] == answers["lr_scheduler_type"]
    assert config[arguments + "bf16"] is (answers["bf16"] == "true")
    assert config[arguments + "tf32"] is (answers["tf32"] == "true")
    assert config["strategy.fraction-train"] == float(answers["fraction_fit"]) == 0.1
    assert config["num-server-rounds"] == int(answers["num_server_rounds"])
    assert config["static.challenge"] == "medical"
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
    assert "FedAvg" in next(value for key, value in table.items() if key.startswith("Strategy"))
    assert table["Clients"].startswith("20 SuperNodes")
    readme = (default_project / "README.md").read_text()
    assert ("export FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1\nflwr run . local --stream "
            '--federation-config "num-supernodes=20 client-resources-num-cpus=6 '
            'client-resources-num-gpus=1.0"\n' in readme)
    assert "options." not in readme, "Flower 1.42 warns on options. fields in a connection"
    assert "[superlink" not in readme.split("## Deployment Engine")[0], "no connection to hand-edit"


@pytest.mark.parametrize("challenge", CHALLENGES)
def test_flower_accepts_the_rendered_app(challenge, rendered_project):
    from flwr.cli.config_utils import load_and_validate
    from flwr.cli.utils import validate_project_name

    config, _warnings = load_and_validate(rendered_project(challenge) / "pyproject.toml", check_module=False)
    validate_project_name(config["project"]["name"], "name")


@pytest.mark.parametrize("models, challenge", [
    (("Qwen/Qwen2.5-7B-Instruct", "microsoft/Phi-4-mini-instruct"), "medical"),
    (("Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-7B"), "finance"),
    (("meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B"), "general-nlp"),
    (("Qwen/Qwen2.5-Coder-32B-Instruct", "Qwen/Qwen2.5-Coder-32B-Base"), "code"),
])
def test_two_base_models_render_into_two_folders(models, challenge, tmp_path):
    first, second = (render(tmp_path, base_model=model, challenge=challenge) for model in models)
    assert first != second and first.is_dir() and second.is_dir()
    assert all(len(project.name) <= 32 for project in (first, second))


def test_requires_python_admits_no_python_a_dependency_refuses(default_project):
    """Every Python the rendered project admits is admitted by each installed distribution it
    depends on, directly or not (flwr 1.42 needs 3.11): else Flower's own installation of the
    app's dependencies cannot resolve."""
    from importlib.metadata import distribution

    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

    project = tomllib.loads((default_project / "pyproject.toml").read_text())["project"]
    ours = SpecifierSet(project["requires-python"])
    pythons = [f"3.{minor}" for minor in range(0, 30)]
    admitted = [version for version in pythons if version in ours]
    assert admitted, "no Python admitted at all"
    seen, queue, checked = set(), [Requirement(text) for text in project["dependencies"]], 0
    while queue:
        requirement = queue.pop()
        name = requirement.name.lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        try:
            metadata = distribution(requirement.name).metadata
        except Exception:  # noqa: BLE001 - an optional dependency this stack does not install
            continue
        checked += 1
        theirs = SpecifierSet(metadata.get("Requires-Python") or "")
        refused = [version for version in admitted if version not in theirs]
        assert not refused, f"requires-python {ours} admits {refused}, which {name} ({theirs}) refuses"
        for text in metadata.get_all("Requires-Dist") or []:
            child = Requirement(text)
            extras = requirement.extras or {""}
            if child.marker is None or any(child.marker.evaluate({"extra": extra}) for extra in extras):
                queue.append(child)
    assert checked >= 20, f"only {checked} installed distributions were checked"


def test_rendered_project_installs_and_its_dependencies_are_this_stack(default_project, tmp_path):
    project = shutil.copytree(default_project, tmp_path / "project")  # the build writes beside it
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(project)],
        check=True,
    )
    assert (target / DEFAULT_PACKAGE / "server_app.py").is_file()
    assert (target / DEFAULT_PACKAGE / "evaluation" / "medical.py").is_file()
    dry_run = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-build-isolation", str(project)],
        capture_output=True, text=True, check=True,
    )
    would_install = re.search(r"Would install (.*)", dry_run.stdout)
    assert would_install is not None
    assert would_install[1].split() == [f"{DEFAULT_SLUG}-1.0.0"], dry_run.stdout


def test_rendering_writes_no_bytecode_into_the_template_or_the_project(tmp_path):
    """The template's filters and hooks import files of the template's package; bytecode written
    beside them would be copied into every rendered project."""
    template = tmp_path / "template"
    names = subprocess.run(["git", "ls-files", "-z"], cwd=TEMPLATE_DIR, capture_output=True, text=True,
                           check=True).stdout.split("\0")
    for name in filter(None, names):
        if (TEMPLATE_DIR / name).is_file():
            (template / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(TEMPLATE_DIR / name, template / name)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(tmp_path / "out"), str(template),
         "challenge=finance"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    )
    (project,) = (tmp_path / "out").iterdir()
    assert not list(project.rglob("__pycache__")), "bytecode in the rendered project"
    assert not list((template / "{{cookiecutter.project_slug}}").rglob("__pycache__")), (
        "bytecode in the template's project folder"
    )


@pytest.mark.parametrize("challenge", CHALLENGES)
def test_every_module_of_each_challenges_render_imports(challenge, rendered_challenge):
    """Nothing the pruned evaluation still needs was pruned: every module of the package imports,
    and `eval` finds the one challenge evaluation."""
    package = rendered_challenge(challenge)
    package_dir = package.project / package.name
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir).with_suffix("").parts
        importlib.import_module(".".join((package.name, *parts[: -1 if parts[-1] == "__init__" else None])))
    evaluation = package(f"evaluation.{CHALLENGES[challenge].evaluation_module}")
    assert package("eval").challenge_evaluation() is evaluation
