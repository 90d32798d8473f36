"""An isolated local Flower SuperLink and `flwr run` on it, for tests, demo and benchmarks.

Each `LocalSuperLink` gets its own FLWR_HOME (with a 'local' connection of N simulated
SuperNodes) and its own free ports, starts `flower-superlink` itself so that it knows the
pid, and stops that process group when it leaves.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

BIN_DIR = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def toml_value(value: object) -> str:
    """A run-config value as `flwr run --run-config` parses it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))


def connection_toml() -> str:
    """A Flower config whose default connection is the local simulation (Flower 1.42's form:
    an address only; the simulation's size is set with `flwr federation simulation-config`)."""
    return '[superlink]\ndefault = "local"\n\n[superlink.local]\naddress = ":local:"\n'


def simulation_config_command(num_supernodes: int, num_cpus: int = 1, num_gpus: float = 0.0) -> list[str]:
    """The `flwr` command that sizes the local simulation, as the rendered README gives it."""
    return [
        str(BIN_DIR / "flwr"), "federation", "simulation-config",
        "--num-supernodes", str(num_supernodes),
        "--client-resources-num-cpus", str(num_cpus), "--client-resources-num-gpus", str(num_gpus),
    ]


def wait_until_healthy(
    process: subprocess.Popen, url: str, timeout: float, verify: ssl.SSLContext | bool = True
) -> None:
    """Wait until `url` answers with success; raise if `process` exits first or time runs out."""
    name = Path(process.args[0]).name
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=0.5, verify=verify).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{name} did not answer within {timeout:.0f}s")


def process_tree(pids: list[int]) -> list[psutil.Process]:
    """The processes `pids` and every process they started (taken before any is stopped: the
    simulation and Ray start sessions of their own, and orphans lose their parent)."""
    tree = []
    for pid in pids:
        try:
            root = psutil.Process(pid)
            tree += [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    return tree


def stop_process_tree(pids: list[int], grace: float | None = 20.0) -> None:
    """SIGTERM to the processes `pids` and all their descendants, SIGKILL to what is left after
    `grace` seconds (`None`: SIGKILL at once, as a crash)."""
    alive = process_tree(pids)
    if grace is not None:
        for process in alive:
            try:
                process.terminate()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(alive, timeout=grace)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)


def superlinks_of_home(home: Path) -> list[int]:
    """Pids of the local SuperLinks that `flwr` started for the Flower home `home` (their command
    line names the log file they keep in it)."""
    marker = str(Path(home) / "local-superlink") + os.sep
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if any(Path(part).name.startswith("flower-superlink") for part in cmdline[:2]) and any(
            marker in part for part in cmdline
        ):
            found.append(process.info["pid"])
    return found


def stop_superlinks_of_home(home: Path) -> None:
    """Stop, by pid, the local SuperLinks `flwr` started for `home`, and what they started."""
    stop_process_tree(superlinks_of_home(home))


class _TerminateAsExit:
    """While active, SIGTERM raises SystemExit, so that `finally` blocks and context managers
    stop what they started (Python's default SIGTERM ends the process without them)."""

    def __init__(self) -> None:
        self.previous = None

    def __enter__(self) -> None:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            self.previous = signal.signal(signal.SIGTERM, self._raise)

    def __exit__(self, *exc_info) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
            self.previous = None

    @staticmethod
    def _raise(signum, frame):
        raise SystemExit(128 + signum)


@dataclass
class RunOutcome:
    """What one `flwr run --stream` printed and how the run ended."""

    returncode: int
    output: str
    status: str


class LocalSuperLink:
    """A `flower-superlink` in simulation mode under a private FLWR_HOME, sized as the README says."""

    def __init__(self, home: Path, num_supernodes: int = 2, num_cpus: int = 1) -> None:
        self.home = Path(home)
        self.num_supernodes = num_supernodes
        self.num_cpus = num_cpus
        self.http_port = free_port()
        self.control_port = free_port()
        self.process: subprocess.Popen | None = None
        self._sigterm = _TerminateAsExit()

    @property
    def env(self) -> dict[str, str]:
        """Environment for `flwr` commands aimed at this SuperLink."""
        env = dict(os.environ)
        env.update(
            FLWR_HOME=str(self.home),
            FLWR_LOCAL_SUPERLINK_HTTP_API_PORT=str(self.http_port),
            FLWR_LOCAL_CONTROL_API_PORT=str(self.control_port),
            FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION="1",
            FLWR_DISABLE_UPDATE_CHECK="1",
            PATH=f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}",
            HF_HUB_OFFLINE="1",
            HF_DATASETS_OFFLINE="1",
            TOKENIZERS_PARALLELISM="false",
            RAY_DEDUP_LOGS="0",
        )
        return env

    def start(self, cwd: Path, timeout: float = 60.0) -> None:
        """Start the SuperLink (its apps write relative paths under `cwd`)."""
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "config.toml").write_text(connection_toml(), encoding="utf-8")
        log_dir = self.home / "local-superlink"
        log_dir.mkdir(exist_ok=True)
        command = [
            str(BIN_DIR / "flower-superlink"), "--insecure", "--simulation",
            "--isolation", "subprocess",
            "--control-api-address", f"127.0.0.1:{self.control_port}",
            "--host", "127.0.0.1", "--port", str(self.http_port),
            "--database", str(log_dir / "state.db"),
            "--log-file", str(log_dir / "superlink.log"),
        ]
        self._sigterm.__enter__()
        self.process = subprocess.Popen(
            command, cwd=cwd, env=self.env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            wait_until_healthy(self.process, f"http://127.0.0.1:{self.http_port}/health", timeout)
            subprocess.run(
                simulation_config_command(self.num_supernodes, self.num_cpus),
                cwd=cwd, env=self.env, capture_output=True, text=True, timeout=120, check=True,
            )
        except (RuntimeError, subprocess.SubprocessError):
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the SuperLink and everything it started (the simulation, Ray), by its pid."""
        if self.process is not None:
            stop_process_tree([self.process.pid])
            self.process.wait()
            self.process = None
        self._sigterm.__exit__()

    def __enter__(self) -> LocalSuperLink:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start_run(self, project_dir: Path, overrides: dict[str, object]) -> subprocess.Popen:
        """Start `flwr run <project> --stream` with run-config overrides; output to a pipe."""
        run_config = " ".join(f"{key}={toml_value(value)}" for key, value in overrides.items())
        return subprocess.Popen(
            [str(BIN_DIR / "flwr"), "run", str(project_dir), "--stream", "--run-config", run_config],
            cwd=project_dir, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )

    def run(
        self, project_dir: Path, overrides: dict[str, object], timeout: float = 900,
        progress: Callable[[str], None] | None = None,
    ) -> RunOutcome:
        """Run the project to its end, then read the run's whole log and its status.

        `progress` is called with each streamed line as it arrives. The live stream can stop
        before the last lines arrive, so the stored log of the run (`flwr log --show`) is
        appended to what was streamed.
        """
        process = self.start_run(project_dir, overrides)
        timed_out = threading.Event()
        watchdog = threading.Timer(timeout, lambda: (timed_out.set(), process.kill()))
        watchdog.start()
        lines = []
        try:
            for line in process.stdout:
                lines.append(line)
                if progress is not None:
                    progress(line)
            process.wait()
        finally:
            watchdog.cancel()
            if process.poll() is None:
                process.kill()
                process.wait()
        if timed_out.is_set():
            raise subprocess.TimeoutExpired(process.args, timeout, output="".join(lines))
        output = "".join(lines)
        if started := re.search(r"Successfully started run (\d+)", output):
            stored = subprocess.run(
                [str(BIN_DIR / "flwr"), "log", started.group(1), "--show"],
                cwd=project_dir, env=self.env, capture_output=True, text=True, timeout=120,
            )
            output += stored.stdout + stored.stderr
        return RunOutcome(process.returncode, output, self.last_run_status(project_dir))

    def kill(self) -> None:
        """Kill the SuperLink and the run it hosts at once: SIGKILL to it and every descendant
        (the simulation process starts a session of its own), as a crash would."""
        if self.process is None:
            return
        stop_process_tree([self.process.pid], grace=None)
        self.process.wait()
        self.process = None
        self._sigterm.__exit__()

    def last_run_status(self, cwd: Path) -> str:
        """Status of the newest run (`finished:completed`, `finished:failed`, ...)."""
        completed = subprocess.run(
            [str(BIN_DIR / "flwr"), "ls", "--format", "json"],
            cwd=cwd, env=self.env, capture_output=True, text=True, timeout=60,
        )
        runs = json.loads(completed.stdout).get("runs", [])
        if not runs:
            return "none"
        return max(runs, key=lambda run: run["pending-at"])["status"]
