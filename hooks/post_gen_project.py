"""Keep only the rendered challenge's evaluation, then print the next steps."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

PROJECT_DIR = Path.cwd()
PACKAGE_NAME = "{{ cookiecutter.package_name }}"
CHALLENGE = "{{ cookiecutter.challenge }}"
NUM_CPUS = "{{ cookiecutter.num_cpus }}"
NUM_GPUS = "{{ cookiecutter.num_gpus }}"


def load_challenges(package_dir: Path):
    """The rendered package's challenge table (import-light, no dependencies needed).

    No bytecode is written: the project would otherwise start with a `__pycache__` of it.
    """
    spec = importlib.util.spec_from_file_location("rendered_challenges", package_dir / "challenges.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    dont_write_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = dont_write_bytecode
    return module


def prune_evaluation(evaluation_dir: Path, challenges, kept: str) -> list[Path]:
    """Remove the other challenges' evaluation modules and the shared ones `kept` does not use."""
    keep = challenges.challenge(kept)
    needed = {keep.evaluation_module, *keep.evaluation_support}
    candidates = {other.evaluation_module for other in challenges.CHALLENGES.values()}
    candidates |= {name for other in challenges.CHALLENGES.values() for name in other.evaluation_support}
    removed = []
    for name in sorted(candidates - needed):
        for path in (evaluation_dir / f"{name}.py", evaluation_dir / name):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
            else:
                continue
            removed.append(path)
    return removed


def next_steps(project_dir: Path, federation_config: str) -> str:
    """The commands that take a new user from the rendered folder to a trained adapter: the
    README's Set-up and Run commands, in its order."""
    return f"""
Your FlowerTune baseline is in {project_dir}

Next steps (README.md, "Set-up" and "Run", explains each):
  cd {project_dir}
  python -m venv .venv && . .venv/bin/activate
  pip install -e .
  export FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1
  flwr run . local --stream --federation-config "{federation_config}"

The global adapters are saved under results/<run>/peft_<round>/; README.md, "Evaluation", scores them.
"""


def main() -> None:
    package_dir = PROJECT_DIR / PACKAGE_NAME
    challenges = load_challenges(package_dir)
    prune_evaluation(package_dir / "evaluation", challenges, CHALLENGE)
    print(next_steps(PROJECT_DIR, challenges.federation_config(CHALLENGE, int(NUM_CPUS), float(NUM_GPUS))))


if __name__ == "__main__":
    main()
