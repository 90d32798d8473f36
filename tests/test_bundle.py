"""`flwr build` bundles the rendered app and none of what training and tools leave beside it."""

from __future__ import annotations

import os
import subprocess
import tomllib
import zipfile

from testkit.flower import BIN_DIR
from testkit.render import render


def test_app_bundle_holds_the_app_and_no_results_evaluation_outputs_or_caches(tmp_path):
    project = render(tmp_path / "rendered")
    app_files = {
        path.relative_to(project).as_posix() for path in project.rglob("*") if path.is_file()
    } - {".gitignore"}
    config = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    results_dir = config["tool"]["flwr"]["app"]["config"]["train"]["results-dir"]
    package = project.name.replace("-", "_")
    assert {"pyproject.toml", "README.md", f"{package}/client_app.py"} <= app_files
    leftovers = [
        f"{results_dir}/2026-01-01_00-00-00/peft_1/adapter_model.safetensors",
        f"{results_dir}/2026-01-01_00-00-00/peft_1/adapter_config.json",
        f"{results_dir}/2026-01-01_00-00-00/peft_2.partial/adapter_config.json",
        f"{results_dir}/2026-01-01_00-00-00/metrics.json",
        "benchmarks/generation_fpb_fl.jsonl",
        "benchmarks/acc_fpb_fl.txt",
        "benchmarks/summary_fl.json",
        "__pycache__/x.pyc",
        f"{package}/__pycache__/client_app.cpython-311.pyc",
        ".venv/lib/python3.11/site-packages/peft/__init__.py",
        "venv/pyvenv.cfg",
        f"{package}.egg-info/PKG-INFO",
        ".pytest_cache/README.md",
        ".mypy_cache/3.11/client_app.data.json",
        ".ruff_cache/0.14.0/cache",
        ".ipynb_checkpoints/notes-checkpoint.md",
    ]
    for name in leftovers:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_bytes(b"{}")

    env = {**os.environ, "FLWR_HOME": str(tmp_path / "flwr-home"), "FLWR_DISABLE_UPDATE_CHECK": "1"}
    subprocess.run(
        [str(BIN_DIR / "flwr"), "build"], cwd=project, env=env, capture_output=True, text=True, check=True
    )
    (bundle,) = project.glob("*.fab")
    with zipfile.ZipFile(bundle) as fab:
        assert set(fab.namelist()) == app_files | {".info/CONTENT"}
