"""Every supported variant renders right; forbidden answers fail with the field named."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import pytest
from cookiecutter.exceptions import FailedHookException

from testkit.render import render

from .conftest import CHALLENGES, COOKIECUTTER_JSON, DEFAULT_ANSWERS, TEMPLATE_CHALLENGES, no_input_answers
from .variants import FAMILY_MODELS, RENDER_MATRIX, SMOKE_MATRIX


def app_config(project) -> dict:
    def flat(config: dict, prefix: str = "") -> dict:
        out = {}
        for key, value in config.items():
            out.update(flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key: value})
        return out

    return flat(tomllib.loads((project / "pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"])


def test_every_matrix_key_exists_in_cookiecutter_json():
    keys = {key for answers in RENDER_MATRIX for key in answers}
    keys |= {key for answers in SMOKE_MATRIX.values() for key in answers}
    assert keys <= set(COOKIECUTTER_JSON), keys - set(COOKIECUTTER_JSON)


def as_bool(answer: object) -> bool:
    """A yes/no answer as given: a JSON boolean or the text of one."""
    return answer if isinstance(answer, bool) else str(answer).strip().lower() == "true"


@pytest.mark.parametrize("answers", RENDER_MATRIX, ids=lambda answers: "-".join(map(str, answers.values())))
def test_variant_renders_clean_and_its_config_equals_the_answers(answers, tmp_path):
    project = render(tmp_path, **answers)
    for path in project.rglob("*"):
        if path.is_file():
            assert not re.search(r"\{\{|\{%", path.read_text()), f"leftover Jinja in {path}"
    config = app_config(project)
    expected = {**DEFAULT_ANSWERS, **answers}
    arguments = "train.training-arguments."
    assert config["model.name"] == expected["base_model"]
    assert config["model.lora.peft-use-dora"] is as_bool(expected["peft_use_dora"])
    assert config["model.quantization"] == int(expected["quantization"])
    assert config[arguments + "bf16"] is as_bool(expected["bf16"])
    assert config[arguments + "optim"] == expected["optimizer"]
    assert config[arguments + "lr-scheduler-type"] == expected["lr_scheduler_type"]
    readme = (project / "README.md").read_text()
    assert ("| Adapter | DoRA" in readme) is as_bool(expected["peft_use_dora"])
    assert f"| Precision | {'bf16' if as_bool(expected['bf16']) else 'fp16'} |" in readme
    assert f"`{config['model.lora.target-modules']}`" in readme
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=project,
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout


@pytest.mark.parametrize("family", FAMILY_MODELS)
def test_auto_target_modules_fit_the_family(family, tmp_path):
    model, modules = FAMILY_MODELS[family]
    project = render(tmp_path, base_model=model)
    assert app_config(project)["model.lora.target-modules"] == modules
    assert f"| Target modules | `{modules}` |" in (project / "README.md").read_text()


@pytest.mark.parametrize("model", [
    "meta-llama/Llama-2-7b-hf", "meta-llama/Llama-3.2-1B-Instruct", "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
    "HuggingFaceTB/SmolLM-360M", "mistralai/Mistral-Nemo-Instruct-2407", "Qwen/Qwen2-7B",
    "Qwen/Qwen2.5-0.5B", "Qwen/Qwen3-0.6B", "google/gemma-2-2b-it", "google/gemma-3-1b-it",
])
def test_unfused_families_get_the_seven_projections(model, tmp_path):
    assert app_config(render(tmp_path, base_model=model))["model.lora.target-modules"] == (
        "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
    )


@pytest.mark.parametrize("model", [
    "microsoft/Phi-3-mini-4k-instruct", "microsoft/Phi-3-medium-128k-instruct", "microsoft/phi-4",
])
def test_phi_models_get_the_fused_projections(model, tmp_path):
    assert app_config(render(tmp_path, base_model=model))["model.lora.target-modules"] == (
        "qkv_proj,o_proj,gate_up_proj,down_proj"
    )


def test_unknown_family_keeps_auto_for_the_run_to_resolve(tmp_path):
    assert app_config(render(tmp_path, base_model="tiiuae/falcon-7b"))["model.lora.target-modules"] == "auto"


@pytest.mark.parametrize("model", [
    "Qwen/Qwen3-30B-A3B", "Qwen/Qwen1.5-MoE-A2.7B", "Qwen/Qwen3-Next-80B-A3B-Instruct",
    "meta-llama/Llama-4-Scout-17B-16E-Instruct",
])
def test_moe_and_hybrid_checkpoints_of_dense_families_keep_auto(model, tmp_path):
    assert app_config(render(tmp_path, base_model=model))["model.lora.target-modules"] == "auto"


def test_local_model_directory_is_recognised_by_its_model_type(tmp_path, tiny_model):
    project = render(tmp_path, base_model=str(tiny_model("phi3")))
    assert app_config(project)["model.lora.target-modules"] == "qkv_proj,o_proj,gate_up_proj,down_proj"


def test_explicit_target_modules_are_kept(tmp_path):
    project = render(tmp_path, lora_target_modules=" q_proj , v_proj ")
    assert app_config(project)["model.lora.target-modules"] == "q_proj,v_proj"


FORBIDDEN = [
    ("project_slug", "9-starts-with-digit"),
    ("project_slug", "under_score"),
    ("project_slug", "a" * 33),
    ("package_name", "not-an-identifier"),
    ("package_name", "class"),
    ("base_model", "no-owner"),
    ("base_model", "/no/such/local/model/dir"),
    ("base_model", "relative/../path/x"),
    ("peft_lora_r", "0"),
    ("peft_lora_r", "eight"),
    ("peft_lora_alpha", "-16"),
    ("per_device_train_batch_size", "1.5"),
    ("max_steps", "0"),
    ("accumulation_steps", "x"),
    ("num_server_rounds", "-1"),
    ("num_cpus", "0"),
    ("save_every_round", "0"),
    ("seq_length", "many"),
    ("num_gpus", "-1"),
    ("num_gpus", "one"),
    ("lora_dropout", "1.0"),
    ("lora_dropout", "-0.1"),
    ("max_lr", "0"),
    ("max_lr", "fast"),
    ("min_lr", "1e-3"),
    ("fraction_fit", "0"),
    ("fraction_fit", "1.5"),
    ("lora_target_modules", "q_proj;v_proj"),
    ("email", "not-an-email"),
    ("flower_username", "has space"),
    ("version", "v-one"),
    ("gpu_spec", "   "),
]


@pytest.mark.parametrize(("field", "value"), FORBIDDEN, ids=lambda item: str(item)[:20])
def test_forbidden_answer_fails_naming_the_field_and_writes_nothing(field, value, tmp_path):
    with pytest.raises(FailedHookException) as failure:
        render(tmp_path, **{field: value})
    assert list(tmp_path.iterdir()) == [], "the output folder was left behind"
    lines = str(failure.value).splitlines()
    # one line per bad answer: this one first (an answer derived from it may follow)
    assert lines[0].startswith(f"ERROR: {field} = {value!r}: "), lines
    assert all(line.startswith("ERROR: ") for line in lines)


def test_blank_project_name_is_refused(tmp_path):
    with pytest.raises(FailedHookException, match=r"^ERROR: project_name = '  ': must not be empty"):
        render(tmp_path, project_name="  ", project_slug="some-slug")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("field", "value"), [
    ("optimizer", "adam_wrong"), ("quantization", "16"), ("challenge", "legal"), ("challenge", "Finance"),
])
def test_answer_outside_a_choice_list_is_refused_by_name(field, value, tmp_path):
    with pytest.raises(FailedHookException, match=f"ERROR: {field} = '{value}': must be one of "):
        render(tmp_path, **{field: value})
    assert list(tmp_path.iterdir()) == []


def test_cli_reports_a_bad_answer_in_one_line_without_traceback(tmp_path):
    from testkit.render import TEMPLATE_DIR

    result = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(tmp_path), str(TEMPLATE_DIR),
         "peft_lora_r=zero"],
        capture_output=True, text=True,
    )
    assert result.returncode != 0
    output = (result.stdout + result.stderr).strip()
    # the error in one line first; what follows keeps the other answers (test_answers_kept)
    assert output.splitlines()[0] == "ERROR: peft_lora_r = 'zero': must be a positive integer"
    assert "Traceback" not in output
    assert list(tmp_path.iterdir()) == []


HOSTILE = 'Dr. "Quote" O\'Brien \\ back\\slash {{ not jinja }} {% raw %} {#\nsecond line'


def test_hostile_free_text_renders_a_parseable_project(tmp_path):
    project = render(
        tmp_path, full_name=HOSTILE, project_short_description=HOSTILE, gpu_spec=HOSTILE,
        email='o"brien\\{{x}}@example.org',
    )
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["authors"] == [{"name": HOSTILE, "email": 'o"brien\\{{x}}@example.org'}]
    assert pyproject["project"]["description"] == HOSTILE
    readme = (project / "README.md").read_text()
    assert HOSTILE in readme


def test_answers_may_refer_to_other_answers(tmp_path):
    project = render(tmp_path, project_short_description="Tuning {{ cookiecutter.base_model }}")
    description = tomllib.loads((project / "pyproject.toml").read_text())["project"]["description"]
    assert description == "Tuning mistralai/Mistral-7B-v0.3"


def test_string_booleans_and_json_booleans_are_accepted(tmp_path):
    project = render(tmp_path, bf16="false", tf32=False, peft_use_dora="yes")
    config = app_config(project)
    assert config["train.training-arguments.bf16"] is False
    assert config["train.training-arguments.tf32"] is False
    assert config["model.lora.peft-use-dora"] is True


def test_ci_workflow_smoke_trains_every_family():
    import yaml

    from testkit.render import TEMPLATE_DIR

    workflow = yaml.safe_load((TEMPLATE_DIR / ".github" / "workflows" / "variants.yml").read_text())
    assert workflow["jobs"]["smoke"]["strategy"]["matrix"]["family"] == list(SMOKE_MATRIX)


def test_template_given_as_a_relative_path_renders(tmp_path):
    from testkit.render import TEMPLATE_DIR

    result = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(tmp_path), "."],
        cwd=TEMPLATE_DIR, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "flowertune-mistral-7b-v0-3" / "pyproject.toml").is_file()


# --- The four challenges: each renders its own facts, read from the template's one table ---

# Words that name each challenge's benchmarks (the first word of each name in the table).
BENCHMARK_WORDS = {
    name: {benchmark.split()[0] for benchmark in challenge.benchmarks}
    for name, challenge in CHALLENGES.items()
}


def test_the_challenge_table_holds_the_leaderboards_facts():
    facts = {name: (c.dataset_name, c.num_supernodes, c.fraction_train) for name, c in CHALLENGES.items()}
    assert facts == {
        "medical": ("flwrlabs/medical-meadow-medical-flashcards", 20, 0.1),
        "general-nlp": ("flwrlabs/alpaca-gpt4", 20, 0.1),
        "finance": ("flwrlabs/fingpt-sentiment-train", 50, 0.1),
        "code": ("flwrlabs/code-alpaca-20k", 10, 0.2),
    }
    assert BENCHMARK_WORDS == {
        "medical": {"PubMedQA", "MedMCQA", "MedQA", "CareQA"}, "general-nlp": {"MMLU"},
        "finance": {"FPB", "FiQA", "TFNS"}, "code": {"HumanEval", "MBPP", "MultiPL-E"},
    }


@pytest.mark.parametrize("challenge", CHALLENGES)
def test_challenge_config_holds_its_static_data_set_and_default_fraction(challenge, rendered_project):
    facts = CHALLENGES[challenge]
    config = app_config(rendered_project(challenge))
    assert config["static.challenge"] == challenge
    assert config["static.dataset.name"] == facts.dataset_name
    # the answer's default is the challenge's official fraction
    assert config["strategy.fraction-train"] == facts.fraction_train == float(
        no_input_answers(challenge=challenge)["fraction_fit"]
    )


@pytest.mark.parametrize("challenge", CHALLENGES)
def test_challenge_readme_gives_its_node_count_everywhere(challenge, rendered_project):
    nodes = CHALLENGES[challenge].num_supernodes
    readme = (rendered_project(challenge) / "README.md").read_text()
    assert f'flwr run . local --stream --federation-config "num-supernodes={nodes} ' in readme
    assert f"| Clients | {nodes} SuperNodes, one IID partition each |" in readme
    counts = re.findall(r"--num-supernodes (\d+)|num-supernodes=(\d+)|num-partitions=(\d+)"
                        r"|(\d+) SuperNodes", readme)
    assert {int(next(filter(None, groups))) for groups in counts} == {nodes}
    assert len(counts) >= 5
    assert f"`dataset.name = \"{CHALLENGES[challenge].dataset_name}\"`" in readme
    assert f'`challenge = "{challenge}"`' in readme


@pytest.mark.parametrize("challenge", CHALLENGES)
def test_challenge_readme_names_its_own_benchmarks_only(challenge, rendered_project):
    readme = (rendered_project(challenge) / "README.md").read_text()
    for benchmark in CHALLENGES[challenge].benchmarks:
        assert benchmark in readme
    assert CHALLENGES[challenge].official_evaluation in readme
    for other, words in BENCHMARK_WORDS.items():
        if other != challenge:
            for word in words:
                assert word.lower() not in readme.lower(), f"the {challenge} README names {word} ({other})"
            assert CHALLENGES[other].official_evaluation not in readme
            assert CHALLENGES[other].dataset_name not in readme


@pytest.mark.parametrize("challenge", CHALLENGES)
def test_challenge_render_parses_and_passes_its_own_lint(challenge, rendered_project):
    project = rendered_project(challenge)
    tomllib.loads((project / "pyproject.toml").read_text())
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--config", "pyproject.toml", "."],
        cwd=project, capture_output=True, text=True,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.parametrize("challenge", CHALLENGES)
def test_post_generation_next_steps_are_the_readmes_run_commands(challenge, tmp_path, capfd):
    capfd.readouterr()
    project = render(tmp_path, challenge=challenge, num_cpus="3", num_gpus="0.5")
    output = capfd.readouterr().out
    nodes = CHALLENGES[challenge].num_supernodes
    assert f"Your FlowerTune baseline is in {project}" in output
    run = (f'flwr run . local --stream --federation-config "num-supernodes={nodes} '
           'client-resources-num-cpus=3 client-resources-num-gpus=0.5"')
    assert run in output
    assert run in (project / "README.md").read_text()


@pytest.mark.parametrize("model", ["mistralai/Mistral-7B-v0.3", "meta-llama/Llama-3.1-8B-Instruct",
                                   "HuggingFaceTB/SmolLM2-1.7B-Instruct"])
def test_a_model_rendered_for_every_challenge_lands_in_a_folder_per_challenge(model, tmp_path):
    projects = {name: render(tmp_path, base_model=model, challenge=name) for name in CHALLENGES}
    assert len({project.name for project in projects.values()}) == len(CHALLENGES)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(p.name for p in projects.values())
    model_name = model.split("/")[-1]
    for challenge, project in projects.items():
        slug = project.name
        assert len(slug) <= 32 and re.fullmatch(r"[a-z][a-z0-9-]*", slug), slug
        assert (project / slug.replace("-", "_") / "client_app.py").is_file()
        pyproject = tomllib.loads((project / "pyproject.toml").read_text())
        assert pyproject["project"]["name"] == slug
        assert pyproject["tool"]["flwr"]["app"]["config"]["static"]["challenge"] == challenge
        title = CHALLENGES[challenge].title
        if challenge == TEMPLATE_CHALLENGES.DEFAULT_CHALLENGE:
            assert (project / "README.md").read_text().startswith(f"# FlowerTune {model_name}\n")
            assert not any(slug.endswith(f"-{other}") for other in CHALLENGES)
        else:
            assert slug.endswith(f"-{challenge}"), slug
            assert (project / "README.md").read_text().startswith(f"# FlowerTune {model_name} {title}\n")


def test_an_unknown_challenge_renders_the_defaults_and_is_then_refused_by_name(tmp_path):
    import local_extensions

    assert local_extensions.challenge("finance").num_supernodes == 50
    assert local_extensions.challenge("legal").name == TEMPLATE_CHALLENGES.DEFAULT_CHALLENGE
    with pytest.raises(FailedHookException, match="ERROR: challenge = 'legal': must be one of medical, "):
        render(tmp_path, challenge="legal")
