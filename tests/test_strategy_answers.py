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
        __validation_fraction=0.2, __server_learning_rate=0.003, __beta_1=0.8, __beta_2=0.95,
        __tau=1e-4, __proximal_mu=0.1, __server_momentum=0.7,
    )
    assert config["train.dynamic-data-seed"] is False
    assert (config["strategy.fraction-evaluate"], config["train.validation-fraction"]) == (0.5, 0.2)
    adaptive = ("strategy.server-learning-rate", "strategy.beta-1", "strategy.beta-2", "strategy.tau")
    assert tuple(config[key] for key in adaptive) == (0.003, 0.8, 0.95, 1e-4)
    assert (config["strategy.proximal-mu"], config["strategy.server-momentum"]) == (0.1, 0.7)
    assert "eta 0.003" in readme
    assert "report the global adapter's loss on the 0.2 of their partition" in readme


@pytest.mark.parametrize("field, value", [
    ("__proximal_mu", -1), ("__server_learning_rate", 0), ("__server_momentum", 1.0), ("__beta_1", "x"),
    ("__beta_2", 1.5),
    ("__tau", 0), ("fraction_evaluate", 1.2), ("__validation_fraction", 1.0), ("__validation_fraction", 0),
])
def test_a_bad_answer_is_refused_naming_the_field(field, value, tmp_path):
    with pytest.raises(FailedHookException, match=rf"^ERROR: {field} = "):
        render(tmp_path, **{field: value})
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("field, value, allowed", [
    ("strategy", "fedsgd", "must be one of fedavg, fedprox, fedavgm, fedadam, fedyogi, flexlora"),
    ("dynamic_data_seed", "sometimes", "must be true or false"),
])
def test_a_bad_choice_or_boolean_is_refused_naming_what_is_allowed(field, value, allowed, tmp_path):
    with pytest.raises(FailedHookException, match=rf"^ERROR: {field} = '{value}': {allowed}$"):
        render(tmp_path, **{field: value})
    assert not list(tmp_path.iterdir())


def test_strategy_parameters_are_not_prompted_but_can_be_given():
    from .conftest import COOKIECUTTER_JSON

    prompted = {key for key in COOKIECUTTER_JSON if not key.startswith("_")}
    hidden = {"proximal_mu", "server_learning_rate", "server_momentum", "beta_1", "beta_2", "tau",
              "validation_fraction"}
    assert not prompted & hidden
    assert {f"__{name}" for name in hidden} <= set(COOKIECUTTER_JSON)
