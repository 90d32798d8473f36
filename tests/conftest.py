"""Shared fixtures: tiny models, flashcards, rendered packages and a private SuperLink."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

from testkit.flashcards import write_flashcards
from testkit.flower import LocalSuperLink
from testkit.render import TEMPLATE_DIR, TEMPLATE_PACKAGE_DIR, load_template_module, render
from testkit.tiny_models import build_tiny_model

COOKIECUTTER_JSON = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text(encoding="utf-8"))


def no_input_answers(**answers: object) -> dict:
    """The answers `--no-input` renders with `answers` given: every default, those that refer to
    other answers (`{{ cookiecutter.x }}`) worked out, as cookiecutter works them out (strings,
    except booleans). The unprompted `__x` answers are kept; private (`_x`) keys are left out."""
    from cookiecutter.generate import generate_context
    from cookiecutter.prompt import prompt_for_config

    context = generate_context(context_file=str(TEMPLATE_DIR / "cookiecutter.json"), extra_context=answers)
    return {key: value for key, value in prompt_for_config(context, no_input=True).items()
            if not key.startswith("_") or (key.startswith("__") and key != "__answers_validated")}


DEFAULT_ANSWERS = no_input_answers()


# The template's one table of the four challenges, read from the template folder itself.
TEMPLATE_CHALLENGES = load_template_module(TEMPLATE_PACKAGE_DIR / "challenges.py", "template_challenges")
CHALLENGES = TEMPLATE_CHALLENGES.CHALLENGES


class RenderedPackage:
    """A rendered project whose package is importable; calling it imports `<package>.<module>`."""

    def __init__(self, project: Path) -> None:
        self.project = project
        self.name = project.name.replace("-", "_")

    def __call__(self, module: str):
        return importlib.import_module(f"{self.name}.{module}")


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
def rendered_challenge(tmp_path_factory):
    """Factory: the default render of a challenge, its package importable (`RenderedPackage`).

    Each challenge is rendered once per session; the packages have different names, so they
    are importable side by side. Tests must not change these projects.
    """
    packages: dict[str, RenderedPackage] = {}
    root = tmp_path_factory.mktemp("rendered-challenges")

    def get(challenge: str) -> RenderedPackage:
        if challenge not in packages:
            project = render(root / challenge, challenge=challenge)
            sys.path.insert(0, str(project))
            packages[challenge] = RenderedPackage(project)
        return packages[challenge]

    yield get
    for package in packages.values():
        sys.path.remove(str(package.project))


@pytest.fixture(scope="session")
def rendered_package(rendered_challenge):
    """The default render's Python package, importable (modules by short name)."""
    return rendered_challenge(TEMPLATE_CHALLENGES.DEFAULT_CHALLENGE)


@pytest.fixture(scope="session")
def rendered_project(tmp_path_factory):
    """Factory: the folder of a challenge's default render, never imported (no `__pycache__`).

    Rendered once per session for the tests that read the rendered files; they must not
    change them.
    """
    projects: dict[str, Path] = {}
    root = tmp_path_factory.mktemp("rendered-projects")

    def get(challenge: str) -> Path:
        if challenge not in projects:
            projects[challenge] = render(root / challenge, challenge=challenge)
        return projects[challenge]

    return get


@pytest.fixture(scope="module")
def superlink(tmp_path_factory):
    """A local SuperLink with 2 simulated SuperNodes, stopped (by pid) after the module."""
    home = tmp_path_factory.mktemp("flwr-home")
    with LocalSuperLink(home, num_supernodes=2) as link:
        link.start(cwd=home)
        yield link
