"""The hooks, imported and tested as modules."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from testkit.render import TEMPLATE_DIR

from .conftest import (
    CHALLENGES,
    COOKIECUTTER_JSON,
    DEFAULT_ANSWERS,
    TEMPLATE_CHALLENGES,
    TEMPLATE_PACKAGE_DIR,
    load_template_module,
)


def load_hook(name: str):
    return load_template_module(TEMPLATE_DIR / "hooks" / f"{name}.py", f"hook_{name}")


pre_gen = load_hook("pre_gen_project")
post_gen = load_hook("post_gen_project")
CHOICES = COOKIECUTTER_JSON["_choices"]


def default_answers(**changes) -> dict:
    answers = dict(DEFAULT_ANSWERS)
    answers.update(project_name="FlowerTune X", project_slug="flowertune-x", package_name="flowertune_x",
                   project_short_description="A baseline.")
    answers.update(changes)
    return answers


def test_default_answers_are_valid():
    pre_gen.validate(default_answers(), CHOICES)


def test_every_challenge_is_a_choice_of_the_answer_and_medical_is_the_default():
    assert set(pre_gen.CHOICES) == set(CHOICES)
    assert CHOICES["challenge"] == list(CHALLENGES)
    assert DEFAULT_ANSWERS["challenge"] == TEMPLATE_CHALLENGES.DEFAULT_CHALLENGE == "medical"


@pytest.mark.parametrize("challenge", CHALLENGES)
def test_every_challenge_is_a_valid_answer(challenge):
    pre_gen.validate(default_answers(challenge=challenge), CHOICES)


@pytest.mark.parametrize(("field", "value"), [
    ("challenge", "legal"), ("challenge", "Medical"),
    ("peft_lora_r", True), ("peft_lora_r", 2.5), ("max_steps", ""), ("quantization", 16),
    ("bf16", "maybe"), ("optimizer", "adam"), ("lr_scheduler_type", "step"), ("license", "GPL"),
    ("min_lr", "1e-3"), ("max_lr", "inf"), ("fraction_fit", "nan"), ("num_gpus", True),
    ("project_slug", "x" * 33), ("package_name", "naïve"), ("base_model", "a/b/c"),
])
def test_bad_answers_name_their_field(field, value):
    with pytest.raises(pre_gen.InvalidAnswers) as failure:
        pre_gen.validate(default_answers(**{field: value}), CHOICES)
    assert failure.value.fields == [field]
    assert str(failure.value).startswith(f"ERROR: {field} = {value!r}: ")


def test_every_bad_answer_is_named_at_once_one_line_each():
    answers = default_answers(challenge="finanse", quantization="16", peft_lora_r="x", bf16="maybe")
    with pytest.raises(pre_gen.InvalidAnswers) as failure:
        pre_gen.validate(answers, CHOICES)
    assert sorted(failure.value.fields) == ["bf16", "challenge", "peft_lora_r", "quantization"]
    lines = str(failure.value).splitlines()
    assert len(lines) == 4 and all(line.startswith("ERROR: ") for line in lines)
    assert "ERROR: challenge = 'finanse': must be one of medical, general-nlp, finance, code" in lines
    assert "ERROR: quantization = '16': must be one of 4, 8" in lines


@pytest.mark.parametrize("value", [True, False, "true", "False", " TRUE ", "yes", "n", "1", "0"])
def test_booleans_accept_json_and_the_words_of_a_yes_no_answer(value):
    assert pre_gen.boolean("bf16", value) is (str(value).strip().lower() in ("true", "yes", "1"))


def test_quantization_accepts_the_number_of_older_answer_files():
    pre_gen.validate(default_answers(quantization=8), CHOICES)


def test_an_existing_absolute_model_directory_is_a_valid_base_model(tmp_path):
    pre_gen.check_base_model(str(tmp_path))
    with pytest.raises(pre_gen.AnswerError):
        pre_gen.check_base_model(str(tmp_path / "missing"))


def test_min_lr_equal_to_max_lr_is_allowed():
    pre_gen.validate(default_answers(max_lr="1e-4", min_lr="0.0001"), CHOICES)


@pytest.mark.parametrize("num_supernodes", [10, 20, 50])
def test_post_generation_hook_prints_the_readmes_first_run_commands(num_supernodes):
    size = f"num-supernodes={num_supernodes} client-resources-num-cpus=3 client-resources-num-gpus=0.5"
    text = post_gen.next_steps(Path("/work/flowertune-x"), size)
    lines = [line.strip() for line in text.splitlines()]
    start = lines.index("cd /work/flowertune-x")
    assert lines[start:start + 5] == [
        "cd /work/flowertune-x",
        "python -m venv .venv && . .venv/bin/activate",
        "pip install -e .",
        "export FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1",
        f'flwr run . local --stream --federation-config "{size}"',
    ]
    assert "peft_<round>" in text


def evaluation_copy(tmp_path: Path) -> Path:
    """The template's `evaluation/` folder, plus a `code/` package standing for the Code evaluation."""
    evaluation_dir = tmp_path / "evaluation"
    shutil.copytree(TEMPLATE_PACKAGE_DIR / "evaluation", evaluation_dir,
                    ignore=shutil.ignore_patterns("__pycache__"))
    (evaluation_dir / "code").mkdir(exist_ok=True)
    (evaluation_dir / "code" / "__init__.py").write_text('"""Code evaluation (stand-in)."""\n')
    return evaluation_dir


@pytest.mark.parametrize("challenge", CHALLENGES)
def test_pruning_keeps_the_challenges_evaluation_and_the_modules_it_uses_only(challenge, tmp_path):
    evaluation_dir = evaluation_copy(tmp_path)
    before = {path.name for path in evaluation_dir.iterdir()}
    kept = CHALLENGES[challenge]
    needed = {kept.evaluation_module, *kept.evaluation_support}
    others = {other.evaluation_module for other in CHALLENGES.values()} - needed
    others |= {name for other in CHALLENGES.values() for name in other.evaluation_support} - needed
    assert others, "every challenge would keep everything"
    claimed = {other.evaluation_module for other in CHALLENGES.values()}
    claimed |= {name for other in CHALLENGES.values() for name in other.evaluation_support}
    shared = {Path(name).stem for name in before} - claimed - {"__init__"}  # no challenge's own: all keep it

    removed = post_gen.prune_evaluation(evaluation_dir, TEMPLATE_CHALLENGES, challenge)

    left = {path.name for path in evaluation_dir.iterdir()}
    # a module may be a file or a package; whichever the template has is kept or removed whole
    assert {Path(name).stem for name in left} == {"__init__", *needed, *shared}
    assert left == {name for name in before if Path(name).stem not in others}
    assert {path.name for path in removed} == before - left
    assert (evaluation_dir / "__init__.py").is_file()


def test_pruning_unknown_challenge_names_the_challenges(tmp_path):
    with pytest.raises(ValueError, match="challenge = 'legal': must be one of medical, general-nlp, finance"):
        post_gen.prune_evaluation(evaluation_copy(tmp_path), TEMPLATE_CHALLENGES, "legal")
