"""The rendered README's first-run commands, pasted in order into one shell with a fresh Flower
home, train a round; the evaluation and the report then fill its Results.

Only the model, the data and the machine size are substituted: the base model is a tiny local
one (an answer), `dataset.name` points at local rows, and the simulation's size fits this
machine. The test's own environment stands in for the `.venv` the first line would create.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.benchmark_fixtures import write_finance_fixtures
from testkit.challenge_data import write_challenge_data
from testkit.flower import BIN_DIR, free_port, stop_superlinks_of_home
from testkit.render import render

from .smoke import final_adapter

pytestmark = pytest.mark.slow

FIRST_RUN_SECTIONS = ("## Set-up", "## Run")
VENV_LINE = "python -m venv .venv && . .venv/bin/activate"
SMALL_ANSWERS = {
    "challenge": "finance", "num_server_rounds": 1, "save_every_round": 1, "max_steps": 2,
    "per_device_train_batch_size": 2, "seq_length": 128, "num_cpus": 1, "num_gpus": 0.0,
}


def shell_blocks(readme: str, sections: tuple[str, ...]) -> list[str]:
    """The ```bash blocks of the named `## ` sections, in the README's order."""
    blocks = []
    for part in re.split(r"^(?=## )", readme, flags=re.M):
        if part.startswith(sections):
            blocks += re.findall(r"^```bash\n(.*?)^```", part, flags=re.M | re.S)
    return blocks


def test_the_first_run_path_is_two_blocks_of_the_set_up_and_run_sections(rendered_project):
    readme = (rendered_project("finance") / "README.md").read_text(encoding="utf-8")
    blocks = shell_blocks(readme, FIRST_RUN_SECTIONS)
    assert len(blocks) == 2 and VENV_LINE in blocks[0]
    assert blocks[1].splitlines()[0] == "export FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1"
    assert '--federation-config "num-supernodes=50 ' in blocks[1]


def test_readme_commands_pasted_in_order_train_and_the_report_shows_every_benchmark(tiny_model, tmp_path):
    project = render(tmp_path / "rendered", base_model=str(tiny_model("llama")), **SMALL_ANSWERS)
    pyproject = project / "pyproject.toml"
    data_dir = write_challenge_data(tmp_path / "finance-rows", "finance")
    pyproject.write_text(pyproject.read_text(encoding="utf-8").replace(
        'dataset.name = "flwrlabs/fingpt-sentiment-train"', f"dataset.name = {json.dumps(str(data_dir))}"
    ), encoding="utf-8")
    readme = (project / "README.md").read_text(encoding="utf-8")
    script = "\n".join(shell_blocks(readme, FIRST_RUN_SECTIONS))
    assert VENV_LINE in script
    script = script.replace(VENV_LINE, "true  # the test's environment stands in for .venv")
    script = script.replace("num-supernodes=50", "num-supernodes=2")

    home = tmp_path / "flwr-home"
    env = {
        **os.environ, "FLWR_HOME": str(home), "PATH": f"{BIN_DIR}{os.pathsep}{os.environ['PATH']}",
        "FLWR_LOCAL_SUPERLINK_HTTP_API_PORT": str(free_port()),
        "FLWR_LOCAL_CONTROL_API_PORT": str(free_port()),
        "FLWR_DISABLE_UPDATE_CHECK": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
    }
    env.pop("FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION", None)
    # A Flower home as Flower itself creates it on its first command.
    subprocess.run([str(BIN_DIR / "flwr"), "config", "list"], env=env, check=True, capture_output=True)
    assert "[superlink.local]" in (home / "config.toml").read_text(encoding="utf-8")
    try:
        run = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=project, env=env,
                             capture_output=True, text=True, timeout=900)
    finally:
        stop_superlinks_of_home(home)
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", project.name],
                       capture_output=True)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert "Installing app dependencies" not in output and "uv sync" not in output
    assert "Run summary" in output and "base model loads" in output, output[-3000:]
    adapter = final_adapter(project / "results", 1)
    from safetensors.torch import load_file

    b_matrices = [v for k, v in load_file(adapter / "adapter_model.safetensors").items() if ".lora_B." in k]
    assert b_matrices and any(v.abs().sum() > 0 for v in b_matrices), "the round trained nothing"

    finance_data = write_finance_fixtures(tmp_path / "finance-benchmarks")
    package = project.name.replace("-", "_")
    evaluate = subprocess.run(
        [sys.executable, "-m", f"{package}.eval", "--base-model-name-path", str(tiny_model("llama")),
         "--peft-path", str(adapter), "--data-dir", str(finance_data), "--quantization", "none",
         "--batch-size", "8"],
        cwd=project, env=env, capture_output=True, text=True, timeout=900,
    )
    assert evaluate.returncode == 0, evaluate.stderr[-3000:]
    subprocess.run([sys.executable, "-m", f"{package}.report"], cwd=project, env=env, check=True,
                   capture_output=True, timeout=120)
    results = readme_results(project / "README.md")
    for benchmark in ("FPB", "FiQA", "TFNS"):
        assert re.search(rf"^\| {benchmark} \| \d+\.\d\d \|$", results, flags=re.M), results
    assert re.search(r"^\| average \(the leaderboard's ranking\) \| \d+\.\d\d \|$", results, flags=re.M)


def readme_results(readme: Path) -> str:
    text = readme.read_text(encoding="utf-8")
    return text.split("<!-- results:start -->", 1)[1].split("<!-- results:end -->", 1)[0]
