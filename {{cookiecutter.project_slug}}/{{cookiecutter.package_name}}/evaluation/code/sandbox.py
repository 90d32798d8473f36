"""Run untrusted programs in an operating-system sandbox: bubblewrap over Linux namespaces.

Every program gets a fresh folder, the only place it can write: the rest of the system is
mounted read-only (and /dev is a minimal, read-only one). It has no network (a network
namespace of its own, with only a loopback that nothing outside listens on) and its own
process namespace: when its first process ends, or is killed at the time limit, the kernel
ends every process it started, detached or not. Each of its processes is limited in writable
memory, address space, file size and number.

Root is exempt from the process limit, so under root bubblewrap runs privileged and every
program runs as a user id of its own (one per worker, with no rights to anything of root's);
folders only root may enter that the programs need (an interpreter under /root) are mounted
back into an otherwise empty /root. Any other user runs bubblewrap unprivileged, through a
user namespace of its own.
"""

from __future__ import annotations

import json
import os
import queue
import selectors
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

UNSAFE_FLAG = "--unsafe-no-sandbox"
MAX_PROCESSES = 256  # processes and threads of one program (node alone runs about a dozen)
# Address space beyond the memory limit: V8 reserves about 1 GB it never touches.
ADDRESS_SPACE_HEADROOM = 2 * 1024**3
OUTPUT_LIMIT = 4096  # bytes of a program's output kept (for messages; verdicts need less)
SANDBOX_UID_BASE = 1_900_000_000  # under root: worker i runs programs as this + i
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
INSTALL_BUBBLEWRAP = "apt-get install bubblewrap (or your distribution's bubblewrap package)"


class CannotExecute(RuntimeError):
    """Programs cannot be run safely here; the message says what is missing."""


@dataclass(frozen=True)
class RunResult:
    """How one command ended."""

    exit_code: int | None  # None: stopped at its time limit
    output: str  # the start of what it wrote to stdout and stderr


def required_tool(name: str, install: str) -> str:
    """The absolute path of an executable on PATH; `CannotExecute` says how to install it."""
    path = shutil.which(name)
    if path is None:
        raise CannotExecute(f"{name} is not installed: {install}")
    return path


def hidden_ancestor(path: Path) -> Path | None:
    """The outermost folder above `path` that users other than its owner cannot enter."""
    for ancestor in reversed(path.parents[:-1]):
        if not ancestor.stat().st_mode & stat.S_IXOTH:
            return ancestor
    return None


def remount_hidden(readable: Sequence[Path]) -> list[str]:
    """bubblewrap arguments that show `readable` folders inside folders only root may enter.

    Each such folder (/root, say) becomes an empty tmpfs, its path down to each readable
    folder is made of plain folders, and the readable folder is mounted back, read-only.
    """
    folders = sorted({Path(os.path.realpath(path)) for path in readable})
    folders = [path for path in folders if not any(other in path.parents for other in folders)]
    arguments: list[str] = []
    covered: set[Path] = set()
    for folder in folders:
        top = hidden_ancestor(folder)
        if top is None:
            continue
        if top not in covered:
            arguments += ["--tmpfs", str(top)]
            covered.add(top)
        between = [parent for parent in reversed(folder.parents) if top in parent.parents]
        for parent in between:
            if parent not in covered:
                arguments += ["--perms", "0755", "--dir", str(parent)]
                covered.add(parent)
        arguments += ["--ro-bind", str(folder), str(folder)]
    return arguments


def remove_tree(path: Path) -> None:
    """Delete a program's folder, whatever permissions the program left in it."""
    if os.geteuid() != 0:  # root needs no permission; others restore their own first
        os.chmod(path, stat.S_IRWXU)
        for root, folders, _ in os.walk(path):
            for name in folders:
                child = os.path.join(root, name)
                if not os.path.islink(child):
                    os.chmod(child, stat.S_IRWXU)
    shutil.rmtree(path)


class Sandbox:
    """Runs commands in fresh folders under bubblewrap (or directly, when `unsafe`).

    `executables` are the absolute paths of the tools the programs run with (an interpreter,
    a compiler): they stay reachable inside. `workers` is how many programs may run at once.
    Use it as a context manager: its folders are deleted at the end.
    """

    def __init__(
        self, memory_limit_bytes: int, executables: Sequence[str], workers: int, unsafe: bool = False
    ):
        self.unsafe = unsafe
        self.as_root = os.geteuid() == 0
        self.limits = [
            f"--nproc={MAX_PROCESSES}",
            f"--data={memory_limit_bytes}",
            f"--as={memory_limit_bytes + ADDRESS_SPACE_HEADROOM}",
            f"--fsize={memory_limit_bytes}",
            "--core=0",
        ]
        self.prlimit = required_tool("prlimit", "apt-get install util-linux")
        tool_dirs = dict.fromkeys(str(Path(executable).parent) for executable in executables)
        self.path = ":".join([*tool_dirs, SYSTEM_PATH])
        if not unsafe:
            self.bwrap = shutil.which("bwrap")
            if self.bwrap is None:
                raise CannotExecute(
                    f"bubblewrap (bwrap) is not installed, so programs cannot be sandboxed: "
                    f"{INSTALL_BUBBLEWRAP}; or pass {UNSAFE_FLAG} to run them unsandboxed at your own risk"
                )
            if self.as_root:
                self.setpriv = required_tool("setpriv", "apt-get install util-linux")
        self.base = Path(tempfile.mkdtemp(prefix="code-eval-"))
        self.user_ids: queue.Queue[int] = queue.Queue()
        for worker in range(workers):
            self.user_ids.put(SANDBOX_UID_BASE + worker if self.as_root else os.geteuid())
        if unsafe:
            return
        if self.as_root:
            self.base.chmod(0o711)  # the programs' user ids enter their own folders in it
            prefixes = [Path(path).parent.parent for executable in executables
                        for path in (executable, os.path.realpath(executable))]
            self.mounts = remount_hidden([*prefixes, self.base])
            # setpriv needs these to switch the user id; it drops them, and all others.
            self.isolation = ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        else:
            self.mounts = []
            self.isolation = ["--unshare-user", "--cap-drop", "ALL"]
            bwrap_help = subprocess.run([self.bwrap, "--help"], capture_output=True, text=True).stdout
            if "--disable-userns" in bwrap_help:  # bubblewrap 0.8 and later
                self.isolation.append("--disable-userns")
        with self.workspace() as workspace:
            probe = workspace.run(["/bin/sh", "-c", "exit 0"], time_limit=30)
        if probe.exit_code != 0:
            self.close()
            reason = " ".join(probe.output.split()) or f"exit status {probe.exit_code}"
            raise CannotExecute(
                f"bubblewrap cannot create a sandbox here ({reason}): it needs to create namespaces "
                "(unprivileged user namespaces for a user other than root, e.g. sysctl "
                "kernel.unprivileged_userns_clone=1 or Ubuntu's AppArmor profile for bwrap; in a "
                f"container, the right to create namespaces); or pass {UNSAFE_FLAG} to run the "
                "programs unsandboxed at your own risk"
            )

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Delete the programs' folders."""
        if self.base.exists():
            remove_tree(self.base)

    @contextmanager
    def workspace(self) -> Iterator[Workspace]:
        """A fresh folder and a user id for one program, both released afterwards."""
        user_id = self.user_ids.get()
        path = Path(tempfile.mkdtemp(dir=self.base))
        try:
            if self.as_root:
                os.chown(path, user_id, user_id)
            yield Workspace(self, path, user_id)
        finally:
            remove_tree(path)
            self.user_ids.put(user_id)

    def command(self, argv: Sequence[str], workdir: Path, user_id: int, info_fd: int) -> list[str]:
        """`argv` wrapped in bubblewrap, the user id switch (under root) and the limits."""
        limited = [self.prlimit, *self.limits, *argv]
        if self.unsafe:
            return limited
        if self.as_root:
            limited = [
                self.setpriv, f"--reuid={user_id}", f"--regid={user_id}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--", *limited,
            ]
        return [
            self.bwrap, "--die-with-parent", "--new-session",
            "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            *self.isolation,
            "--ro-bind", "/", "/", *self.mounts,
            "--bind", str(workdir), str(workdir),
            "--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev",  # no memory-backed files
            "--chdir", str(workdir), "--info-fd", str(info_fd),
            "--", *limited,
        ]


@dataclass(frozen=True)
class Workspace:
    """One program's folder in a sandbox, and the user id its commands run as."""

    sandbox: Sandbox
    path: Path
    user_id: int

    def run(self, argv: Sequence[str], time_limit: float, stdin: bytes = b"") -> RunResult:
        """Run `argv` in this folder for at most `time_limit` seconds of wall-clock time.

        Whatever it started has ended when this returns.
        """
        sandbox = self.sandbox
        info_read, info_write = os.pipe()
        environment = {"PATH": sandbox.path, "HOME": str(self.path), "TMPDIR": str(self.path),
                       "LANG": "C.UTF-8"}
        try:
            process = subprocess.Popen(
                sandbox.command(argv, self.path, self.user_id, info_write),
                cwd=self.path, env=environment, pass_fds=() if sandbox.unsafe else (info_write,),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=sandbox.unsafe,
            )
        finally:
            os.close(info_write)
        deadline = time.monotonic() + time_limit
        with os.fdopen(info_read, "rb") as info, process.stdout:
            try:
                process.stdin.write(stdin)
                process.stdin.close()
            except BrokenPipeError:
                pass
            output, info_text, ended = read_until(process.stdout, info, deadline)
        exit_code = None
        if ended:
            try:
                exit_code = process.wait(max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                pass
        self.end(process, info_text)
        return RunResult(exit_code, output.decode("utf-8", errors="replace"))

    def end(self, process: subprocess.Popen, info_text: bytes) -> None:
        """Kill what is left of a command and wait until every process of it is gone.

        Under bubblewrap, killing the sandbox's first process ends its process namespace, and
        bubblewrap returns once the kernel has reaped them all. Unsandboxed, its process
        group is killed, as the harness does (what left the group escapes: the unsafe risk).
        """
        if self.sandbox.unsafe:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        elif process.poll() is None:
            try:
                os.kill(json.loads(info_text)["child-pid"], signal.SIGKILL)
            except (ValueError, KeyError, ProcessLookupError):
                process.kill()
        process.wait()


def read_until(stdout, info, deadline: float) -> tuple[bytes, bytes, bool]:
    """Read a command's output (its first `OUTPUT_LIMIT` bytes) and bubblewrap's info until
    both end or the deadline passes; whether they ended in time."""
    kept = {stdout: bytearray(), info: bytearray()}
    with selectors.DefaultSelector() as selector:
        for stream in kept:
            selector.register(stream, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return bytes(kept[stdout]), bytes(kept[info]), False
            for key, _ in selector.select(remaining):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                buffer = kept[key.fileobj]
                buffer += chunk[: max(OUTPUT_LIMIT - len(buffer), 0)]
    return bytes(kept[stdout]), bytes(kept[info]), True
