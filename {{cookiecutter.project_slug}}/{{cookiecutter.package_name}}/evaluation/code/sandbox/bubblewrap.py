"""The sandbox itself: each program's job runs in one bubblewrap invocation of its own.

The host starts bubblewrap inside the program's cgroups (`limits`), with the file system view
of `view`, the seccomp filter of `seccomp`, and new process, network, IPC, UTS and cgroup
namespaces; its first process is the `supervisor`, which gets the job (the files, the steps,
a one-time token) on stdin and answers with one line after the token. Under root it runs as
root with only the rights to switch user ids, and each worker's steps run as a user id of
the evaluation's own block (`users`); any other user gets an unprivileged user namespace in
which no further ones can be made. When the supervisor ends, or is killed at the job's
deadline, the kernel ends every process of the program, detached or not, and frees its files.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from .cleanup import remove_quietly
from .limits import MAX_PROCESSES, ProgramLimits
from .seccomp import filter_program
from .tools import UNSAFE_FLAG, CannotExecute
from .users import UserIdBlock
from .view import WORKSPACE, view_arguments

# Address space beyond the memory limit: V8 reserves about 1 GB it never touches.
ADDRESS_SPACE_HEADROOM = 2 * 1024**3
OUTPUT_LIMIT = 4096  # bytes kept of each stream of each step (for messages; verdicts need less)
REPORT_LIMIT = 2**20  # bytes read of the sandbox's own output (the report and bubblewrap's errors)
SETUP_ALLOWANCE = 30.0  # seconds beyond the steps' limits for bubblewrap and the supervisor to start
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
INSTALL_BUBBLEWRAP = "apt-get install bubblewrap (or your distribution's bubblewrap package)"
SUPERVISOR = Path(__file__).with_name("supervisor.py").read_text(encoding="utf-8")
# The first process joins the program's cgroups, then becomes bubblewrap.
JOIN_CGROUPS = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'


@dataclass(frozen=True)
class Step:
    """One command of a program's job, and how the harness reads it (see `supervisor`)."""

    argv: tuple[str, ...]
    time_limit: float
    stdin: str | None = None  # given on its stdin, then end of input; None: /dev/null
    throttle: bool = False
    wait_for_output: bool = False


@dataclass(frozen=True)
class StepResult:
    """How one step ended."""

    exit_code: int | None  # None: stopped at its time limit
    stdout: str  # the start of what it wrote
    stderr: str


@dataclass(frozen=True)
class Run:
    """A job's results (up to the first step that failed; none if no report came) and the
    sandbox's own output besides the report (bubblewrap's errors)."""

    results: list[StepResult]
    output: str


class Sandbox:
    """Runs programs' jobs under bubblewrap (or directly, when `unsafe`).

    `memory_limit_bytes` caps each program as a whole; `executables` are the absolute paths of
    the tools the programs run with (an interpreter, a compiler): they stay reachable inside.
    `workers` is how many programs may run at once. Use it as a context manager: its cgroups
    and user ids are released at the end.
    """

    def __init__(
        self, memory_limit_bytes: int, executables: Sequence[str], workers: int, unsafe: bool = False
    ):
        self.unsafe = unsafe
        self.as_root = os.geteuid() == 0
        self.rlimits = [
            ("RLIMIT_NPROC", MAX_PROCESSES),
            ("RLIMIT_DATA", memory_limit_bytes),
            ("RLIMIT_AS", memory_limit_bytes + ADDRESS_SPACE_HEADROOM),
            ("RLIMIT_FSIZE", memory_limit_bytes),
            ("RLIMIT_CORE", 0),
        ]
        executables = [sys.executable, *executables]  # the supervisor's interpreter
        tool_dirs = dict.fromkeys(str(Path(executable).parent) for executable in executables)
        self.path = ":".join([*tool_dirs, SYSTEM_PATH])
        self.limits: ProgramLimits | None = None
        self.user_id_block: UserIdBlock | None = None
        self.user_ids: queue.Queue[int | None] = queue.Queue()
        if unsafe:
            for _ in range(workers):
                self.user_ids.put(None)
            return
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise CannotExecute(
                f"bubblewrap (bwrap) is not installed, so programs cannot be sandboxed: "
                f"{INSTALL_BUBBLEWRAP}; or pass {UNSAFE_FLAG} to run them unsandboxed at your own risk"
            )
        self.seccomp = filter_program()
        bwrap_help = subprocess.run([bwrap, "--help"], capture_output=True, text=True).stdout
        if self.as_root:  # switching user ids, and giving the workspace to the one it runs as
            isolation = ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_CHOWN"]
        else:
            isolation = ["--unshare-user", "--cap-drop", "ALL"]
            if "--disable-userns" in bwrap_help:  # bubblewrap 0.8 and later; seccomp refuses them anyway
                isolation.append("--disable-userns")
        size = memory_limit_bytes if "--size" in bwrap_help else None
        self.bwrap = [
            bwrap, "--die-with-parent", "--new-session", "--as-pid-1",
            "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            *isolation, *view_arguments(executables, size),
        ]
        try:
            if self.as_root:
                self.user_id_block = UserIdBlock(workers)
                name = f"flowertune-code-eval-{self.user_id_block.index}"
                user_ids: list[int | None] = list(self.user_id_block.user_ids)
            else:
                name = f"flowertune-code-eval-{os.getpid()}-{secrets.token_hex(3)}"
                user_ids = [None] * workers
            self.limits = ProgramLimits(name, memory_limit_bytes, workers)
            for user_id in user_ids:
                self.user_ids.put(user_id)
            probe = self.run({}, [Step(("/bin/sh", "-c", "exit 0"), 30)])
        except BaseException:
            self.close()
            raise
        if [result.exit_code for result in probe.results] != [0]:
            self.close()
            said = [probe.output, *(result.stderr for result in probe.results)]
            reason = " ".join(" ".join(said).split()) or "no report from inside"
            raise CannotExecute(
                f"bubblewrap cannot create a sandbox here ({reason}): it needs to create namespaces "
                "(unprivileged user namespaces for a user other than root, e.g. sysctl "
                "kernel.unprivileged_userns_clone=1 or Ubuntu's AppArmor profile for bwrap; in a "
                f"container, the right to create namespaces); or pass {UNSAFE_FLAG} to run the "
                "programs unsandboxed at your own risk"
            )

    @property
    def description(self) -> str:
        """How programs are held here, e.g. `bubblewrap, cgroup v1 (memory, pids, cpu), seccomp`."""
        if self.unsafe:
            return "none"
        return f"bubblewrap, {self.limits.description}, seccomp"

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Release the cgroups and the user ids."""
        if self.limits is not None:
            self.limits.close()
            self.limits = None
        if self.user_id_block is not None:
            self.user_id_block.close()
            self.user_id_block = None

    def run(self, files: Mapping[str, str], steps: Sequence[Step]) -> Run:
        """Write `files` into a fresh workspace and run `steps` there, each after the previous one
        exited with status 0. Whatever the job started has ended when this returns."""
        user_id = self.user_ids.get()
        token = secrets.token_hex(16)
        try:
            if self.unsafe:
                workspace = Path(tempfile.mkdtemp(prefix="code-eval-"))
                try:
                    job = self.job(token, str(workspace), None, files, steps)
                    return self.run_unsandboxed(workspace, job, token, steps)
                finally:
                    remove_quietly(workspace)
            with self.limits.program() as cgroup_procs:
                job = self.job(token, WORKSPACE, user_id, files, steps)
                return self.run_sandboxed(cgroup_procs, job, token, steps)
        finally:
            self.user_ids.put(user_id)

    def job(self, token: str, workspace: str, user_id: int | None, files: Mapping[str, str],
            steps: Sequence[Step]) -> bytes:
        """What the supervisor reads on stdin."""
        return json.dumps({
            "token": token, "workspace": workspace, "user_id": user_id, "files": dict(files),
            "rlimits": self.rlimits, "output_limit": OUTPUT_LIMIT, "steps": [asdict(step) for step in steps],
        }).encode()

    def environment(self, home: str, temporary: str) -> dict[str, str]:
        return {"PATH": self.path, "HOME": home, "TMPDIR": temporary, "LANG": "C.UTF-8"}

    def run_sandboxed(self, cgroup_procs: list[Path], job: bytes, token: str, steps: Sequence[Step]) -> Run:
        seccomp_read, seccomp_write = os.pipe()
        os.write(seccomp_write, self.seccomp)  # far below a pipe's capacity
        os.close(seccomp_write)
        info_read, info_write = os.pipe()
        command = [
            "/bin/sh", "-c", JOIN_CGROUPS, "sh", *map(str, cgroup_procs), "--",
            *self.bwrap, "--seccomp", str(seccomp_read), "--info-fd", str(info_write),
            "--", sys.executable, "-I", "-S", "-c", SUPERVISOR,
        ]
        try:
            process = subprocess.Popen(
                command, env=self.environment(WORKSPACE, "/tmp"), pass_fds=(seccomp_read, info_write),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            )
        finally:
            os.close(seccomp_read)
            os.close(info_write)
        with os.fdopen(info_read, "rb") as info:
            output, info_text = communicate(process, job, info, deadline(steps))
        if process.poll() is None:  # past the deadline: killing its first process ends them all
            try:
                os.kill(json.loads(info_text)["child-pid"], signal.SIGKILL)
            except (ValueError, KeyError, ProcessLookupError):
                process.kill()
        process.wait()
        return report(output, token)

    def run_unsandboxed(self, workspace: Path, job: bytes, token: str, steps: Sequence[Step]) -> Run:
        """The supervisor run directly, in a folder of the host; at the deadline its process
        group is killed, as the harness kills its programs (what left it escapes)."""
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", SUPERVISOR], cwd=workspace, start_new_session=True,
            env=self.environment(str(workspace), str(workspace)),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        output, _ = communicate(process, job, None, deadline(steps))
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
        return report(output, token)


def deadline(steps: Sequence[Step]) -> float:
    return time.monotonic() + sum(step.time_limit for step in steps) + SETUP_ALLOWANCE


def communicate(process: subprocess.Popen, job: bytes, info, deadline: float) -> tuple[bytes, bytes]:
    """Send the job, then read the sandbox's output (its first `REPORT_LIMIT` bytes) and
    bubblewrap's info until both end or the deadline passes."""
    try:
        process.stdin.write(job)
        process.stdin.close()
    except BrokenPipeError:
        pass
    kept = {process.stdout: bytearray(), **({info: bytearray()} if info is not None else {})}
    with selectors.DefaultSelector() as selector, process.stdout:
        for stream in kept:
            selector.register(stream, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for key, _ in selector.select(remaining):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                buffer = kept[key.fileobj]
                buffer += chunk[: max(REPORT_LIMIT - len(buffer), 0)]
    return bytes(kept[process.stdout]), bytes(kept.get(info, b""))


def report(output: bytes, token: str) -> Run:
    """The supervisor's results from the sandbox's output, and the rest of that output."""
    results, rest = [], []
    for line in output.decode("utf-8", errors="replace").splitlines():
        if line.startswith(f"{token} "):
            results = [StepResult(**result) for result in json.loads(line[len(token) + 1:])]
        else:
            rest.append(line)
    return Run(results, "\n".join(rest))
