"""Print the next steps for the freshly rendered baseline."""

from __future__ import annotations

from pathlib import Path

PROJECT_DIR = Path.cwd()
NUM_SUPERNODES = "{{ cookiecutter._num_supernodes }}"


def next_steps(project_dir: Path, num_supernodes: int) -> str:
    """The commands that take a new user from the rendered folder to a trained adapter."""
    return f"""
Your FlowerTune baseline is in {project_dir}

Next steps:
  1. Install:   cd {project_dir} && python -m venv .venv && . .venv/bin/activate && pip install -e .
  2. Connect:   copy the connection snippet from README.md ("Connect to a Flower simulation")
                into $FLWR_HOME/config.toml (default ~/.flwr/config.toml): {num_supernodes} SuperNodes.
  3. Run:       FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1 flwr run . --stream
  4. Evaluate:  the adapters are saved under results/<run>/peft_<round>/; see README.md, Evaluation.
"""


if __name__ == "__main__":
    print(next_steps(PROJECT_DIR, int(NUM_SUPERNODES)))
