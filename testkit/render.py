"""Render the template and install the result, as a user would."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
TEMPLATE_PACKAGE_DIR = TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / "{{cookiecutter.package_name}}"

# Settings that make a federated round take seconds on a CPU with a tiny model.
SMOKE_OVERRIDES = {
    "num-server-rounds": 2,
    "train.save-every-round": 1,
    "train.seq-length": 128,
    "train.training-arguments.max-steps": 3,
    "train.training-arguments.per-device-train-batch-size": 2,
    "train.training-arguments.logging-steps": 1,
    "strategy.fraction-train": 1.0,
}


def load_template_module(path: Path, name: str) -> types.ModuleType:
    """Import a plain Python file of the template as module `name`, writing no bytecode beside it
    (a `__pycache__` in the template folder would be copied into every render)."""
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module  # dataclasses look their module up
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), module.__dict__)
    return module


def render(output_dir: Path | str, **answers: object) -> Path:
    """Render the template with `answers` (no prompts); return the project folder."""
    from cookiecutter.main import cookiecutter

    return Path(
        cookiecutter(str(TEMPLATE_DIR), no_input=True, output_dir=str(output_dir), extra_context=answers)
    )


def install(project_dir: Path, target: Path) -> subprocess.CompletedProcess:
    """Build and install the rendered project (without its dependencies) into `target`."""
    return subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(project_dir)],
        capture_output=True, text=True, check=True,
    )


def import_rendered_package(output_dir: Path, challenge: str, *modules: str, **answers: object):
    """Render the template for `challenge` (and `answers`) and return the named modules of its
    package, importable from then on."""
    import importlib

    project = render(output_dir, challenge=challenge, **answers)
    sys.path.insert(0, str(project))
    package = project.name.replace("-", "_")
    return [importlib.import_module(f"{package}.{module}") for module in modules]
