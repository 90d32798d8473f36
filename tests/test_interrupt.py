"""A test, demo or benchmark stopped mid-run (SIGTERM, as `timeout` sends it; or SIGINT) leaves
nothing behind: the SuperLink, the simulation and Ray's processes all end with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from testkit.render import SMOKE_OVERRIDES, install, render

pytestmark = pytest.mark.slow

SCRIPT = """
import sys
from pathlib import Path
from testkit.flower import LocalSuperLink
home, project, overrides = Path(sys.argv[1]), Path(sys.argv[2]), eval(sys.argv[3])
with LocalSuperLink(home) as superlink:
    superlink.start(cwd=project)
    superlink.run(project, overrides)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_run_stops_the_superlink_the_simulation_and_ray(
    signum, tiny_model, flashcards_dir, tmp_path
):
    project = render(tmp_path / "rendered", base_model=str(tiny_model("llama")))
    install(project, tmp_path / "site")
    overrides = {**SMOKE_OVERRIDES, "num-server-rounds": 50, "static.dataset.name": str(flashcards_dir),
                 "train.results-dir": str(tmp_path / "results")}
    script = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), str(tmp_path / "home"), str(project),
         repr(overrides)],
        cwd=os.getcwd(), env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        tree = wait_for_training(script, timeout=300)
        script.send_signal(signum)
        script.wait(timeout=120)
        _, alive = psutil.wait_procs(tree, timeout=30)
        assert not [process for process in alive if process.status() != psutil.STATUS_ZOMBIE], (
            f"left running: {[(p.pid, p.name()) for p in alive]}"
        )
    finally:
        for process in psutil.Process(script.pid).children(recursive=True) if script.poll() is None else []:
            process.kill()
        script.kill()


def wait_for_training(script: subprocess.Popen, timeout: float) -> list[psutil.Process]:
    """The script's process tree once Ray's actors train (the first round has begun)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert script.poll() is None, "the run ended before it could be interrupted"
        tree = psutil.Process(script.pid).children(recursive=True)
        names = []
        for process in tree:
            try:
                names.append(" ".join(process.cmdline()))
            except psutil.NoSuchProcess:
                pass
        if any("ClientAppActor" in name or "ray::" in name for name in names):
            time.sleep(3)
            return psutil.Process(script.pid).children(recursive=True)
        time.sleep(1)
    raise AssertionError("no Ray actor started")
