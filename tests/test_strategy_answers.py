"""The strategy, data-order and validation answers: rendered into the config and README, and
bad values refused naming the field."""

from __future__ import annotations

import tomllib

import pytest
from cookiecutter.exceptions import FailedHookException

from testkit.render import render

from .run_config import flat
from .variants import STRATEGIES


def rendered(tmp_path, **answers):
    project = render(tmp_path, **answers)
    config = flat(tomllib.loads((project / "pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"])
    return config, (project / "README.md").read_text()


@pytest.mark.parametrize("name", STRATEGIES)
def test_each_strategy_renders_into_config_and_readme(name, tmp_path):
    config, readme = rendered(tmp_path, strategy=name)
    assert config["strategy.name"] == name
    assert f"| Strategy (`strategy.name`) | `{name}`" in readme
    expected_eta = 0.01 if name in ("fedadam", "fedyogi") else 1.0
    assert config["strategy.server-learning-rate"] == expected_eta


def test_defaults_and_answers_reach_the_config(tmp_path):
    config, readme = rendered(tmp_path)
    assert config["train.dynamic-data-seed"] is True and config["strategy.fraction-evaluate"] == 0.0
    assert config["train.validation-fraction"] == 0.1
    assert "new every round (`train.dynamic-data-seed = true`)" in readme
    config, readme = rendered(
        tmp_path / "b", strategy="fedadam", dynamic_data_seed=False, fraction_evaluate=0.5,
        validation_fraction=0.2, server_learning_rate=0.003, beta_1=0.8, beta_2=0.95, tau=1e-4,
        proximal_mu=0.1, server_momentum=0.7,
    )
    assert config["train.dynamic-data-seed"] is False
    assert (config["strategy.fraction-evaluate"], config["train.validation-fraction"]) == (0.5, 0.2)
    adaptive = ("strategy.server-learning-rate", "strategy.beta-1", "strategy.beta-2", "strategy.tau")
    assert tuple(config[key] for key in adaptive) == (0.003, 0.8, 0.95, 1e-4)
    assert (config["strategy.proximal-mu"], config["strategy.server-momentum"]) == (0.1, 0.7)
    assert "eta 0.003" in readme
    assert "report the global adapter's loss on the 0.2 of their partition" in readme


@pytest.mark.parametrize("field, value", [
    ("proximal_mu", -1), ("server_learning_rate", 0), ("server_momentum", 1.0), ("beta_1", "x"),
    ("beta_2", 1.5),
    ("tau", 0), ("fraction_evaluate", 1.2), ("validation_fraction", 1.0), ("validation_fraction", 0),
])
def test_a_bad_answer_is_refused_naming_the_field(field, value, tmp_path):
    with pytest.raises(FailedHookException, match=rf"^ERROR: {field} = "):
        render(tmp_path, **{field: value})
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("field, value, match", [
    ("strategy", "fedsgd", r"fedsgd provided for choice variable strategy.*flexlora"),
    ("dynamic_data_seed", "sometimes", r"sometimes provided for variable dynamic_data_seed .*boolean"),
])
def test_cookiecutter_itself_refuses_a_bad_choice_or_boolean_naming_it(field, value, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        render(tmp_path, **{field: value})
