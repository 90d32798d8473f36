"""A bad answer found after the last prompt keeps every other answer: the CLI prints them as a
ready command line."""

from __future__ import annotations

import shlex
import subprocess
import sys
import tomllib

from testkit.flower import BIN_DIR
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
    command_line = next(line for line in result.stderr.splitlines() if "--no-input" in line)
    command = shlex.split(command_line)
    # the cookiecutter that ran, started the way it was started
    assert command[:3] == [sys.executable, "-m", "cookiecutter"]
    assert "peft_lora_r=zero" in command and "peft_lora_alpha=48" in command
    fixed = ["peft_lora_r=16" if part == "peft_lora_r=zero" else part for part in command]
    rerun = subprocess.run([*fixed, "-o", str(tmp_path / "second")], capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    (project,) = (tmp_path / "second").iterdir()
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    config = pyproject["tool"]["flwr"]["app"]["config"]
    assert config["model"]["lora"]["peft-lora-r"] == 16 and config["model"]["lora"]["peft-lora-alpha"] == 48
    assert config["static"]["challenge"] == "code"
    assert pyproject["project"]["authors"][0]["name"] == "Ada O'Neil"


def test_bad_choices_given_to_the_cookiecutter_command_are_named_each_in_one_line(tmp_path):
    cookiecutter = str(BIN_DIR / "cookiecutter")
    result = subprocess.run(
        [cookiecutter, "--no-input", "-o", str(tmp_path), str(TEMPLATE_DIR), "challenge=finanse",
         "quantization=16"],
        capture_output=True, text=True,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert output.strip().splitlines()[0:2] == [
        "ERROR: challenge = 'finanse': must be one of medical, general-nlp, finance, code",
        "ERROR: quantization = '16': must be one of 4, 8",
    ]
    command = shlex.split(next(line for line in result.stderr.splitlines() if "--no-input" in line))
    assert command[0] == cookiecutter
    assert "challenge=finanse" in command and "quantization=16" in command
    assert not any(part.startswith(("project_name=", "project_slug=")) for part in command), (
        "names derived from the bad challenge would be carried into the fixed render"
    )
    assert list(tmp_path.iterdir()) == []
