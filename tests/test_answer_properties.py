"""Property: any answer string renders a parseable project or is refused naming its field."""

from __future__ import annotations

import tomllib

import pytest
from cookiecutter.exceptions import FailedHookException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testkit.render import render

FREE_TEXT = ["project_name", "project_short_description", "full_name", "gpu_spec"]
CHECKED = ["email", "flower_username", "version", "base_model", "peft_lora_r", "max_lr", "lora_dropout",
           "lora_target_modules", "fraction_fit", "num_gpus", "project_slug"]


def bake_or_refusal(tmp_path_factory, field: str, value: str):
    """Render with one answer; return the project folder, or None when refused by name."""
    output = tmp_path_factory.mktemp("prop")
    try:
        project = render(output, **{field: value})
    except FailedHookException as refusal:
        # a project name can also make the slug and the package name derived from it invalid
        # (" Ís" gives the package name `is`, a Python keyword)
        derived = ("ERROR: project_slug = ", "ERROR: package_name = ") if field == "project_name" else ()
        assert str(refusal).startswith((f"ERROR: {field} = ", *derived))
        assert list(output.iterdir()) == []
        return None
    tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    return project


@pytest.mark.parametrize("field", FREE_TEXT)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(min_size=1, max_size=40))
def test_free_text_is_kept_or_refused(tmp_path_factory, field, value):
    project = bake_or_refusal(tmp_path_factory, field, value)
    if project is not None and field != "project_name":
        # cookiecutter writes every line ending as the template's own (\n)
        shown = value.replace("\r\n", "\n").replace("\r", "\n")
        assert shown in (project / "README.md").read_bytes().decode("utf-8")


@pytest.mark.parametrize("field", CHECKED)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(max_size=30))
def test_checked_answers_render_or_are_refused_by_name(tmp_path_factory, field, value):
    bake_or_refusal(tmp_path_factory, field, value)
