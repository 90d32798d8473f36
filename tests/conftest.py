"""Shared fixtures: tiny models, flashcards, rendered packages and a private SuperLink."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

from testkit.flashcards import write_flashcards
from testkit.flower import LocalSuperLink
from testkit.render import TEMPLATE_DIR, render
from testkit.tiny_models import build_tiny_model

COOKIECUTTER_JSON = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text(encoding="utf-8"))
# The answers --no-input takes: the first option of each choice list.
DEFAULT_ANSWERS = {
    key: value[0] if isinstance(value, list) else value for key, value in COOKIECUTTER_JSON.items()
}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """Factory: the folder of a tiny random model of a family, built once per session."""
    built: dict[str, Path] = {}
    root = tmp_path_factory.mktemp("tiny-models")

    def get(family: str) -> Path:
        if family not in built:
            built[family] = build_tiny_model(family, root / family)
        return built[family]

    return get


@pytest.fixture(scope="session")
def flashcards_dir(tmp_path_factory) -> Path:
    """A local flashcard data set of 40 rows."""
    return write_flashcards(tmp_path_factory.mktemp("flashcards"), count=40)


@pytest.fixture(scope="session")
def rendered_package(tmp_path_factory):
    """The default render's Python package, importable (modules by short name)."""
    project = render(tmp_path_factory.mktemp("rendered-default"))
    package = project.name.replace("-", "_")
    sys.path.insert(0, str(project))

    def module(name: str):
        return importlib.import_module(f"{package}.{name}")

    yield module
    sys.path.remove(str(project))


@pytest.fixture(scope="module")
def superlink(tmp_path_factory):
    """A local SuperLink with 2 simulated SuperNodes, stopped (by pid) after the module."""
    home = tmp_path_factory.mktemp("flwr-home")
    with LocalSuperLink(home, num_supernodes=2) as link:
        link.start(cwd=home)
        yield link
