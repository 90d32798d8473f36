"""A bad answer found after the last prompt keeps every other answer: the CLI prints them as a
ready command line."""

from __future__ import annotations

import shlex
import subprocess
import sys
import tomllib

from testkit.render import TEMPLATE_DIR


def test_a_refused_answer_prints_a_command_that_renders_the_other_answers(tmp_path):
    typed = ["challenge=code", "peft_lora_r=zero", "peft_lora_alpha=48", "full_name=Ada O'Neil"]
    result = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(tmp_path / "first"),
         str(TEMPLATE_DIR), *typed],
        capture_output=True, text=True,
    )
    assert result.returncode != 0
    assert "ERROR: peft_lora_r = 'zero': must be a positive integer" in result.stdout + result.stderr
    command_line = next(
        line for line in result.stderr.splitlines() if line.strip().startswith("cookiecutter ")
    )
    command = shlex.split(command_line)
    assert "peft_lora_r=zero" in command and "peft_lora_alpha=48" in command
    fixed = ["peft_lora_r=16" if part == "peft_lora_r=zero" else part for part in command[1:]]
    rerun = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "-o", str(tmp_path / "second"), *fixed],
        capture_output=True, text=True,
    )
    assert rerun.returncode == 0, rerun.stderr
    (project,) = (tmp_path / "second").iterdir()
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    config = pyproject["tool"]["flwr"]["app"]["config"]
    assert config["model"]["lora"]["peft-lora-r"] == 16 and config["model"]["lora"]["peft-lora-alpha"] == 48
    assert config["static"]["challenge"] == "code"
    assert pyproject["project"]["authors"][0]["name"] == "Ada O'Neil"
