"""The sandbox's first process: it reads a program's job on stdin, runs its steps, reports.

Run inside the sandbox as `python -I -S -c <this file's text>` (standard library only). The
job is one JSON object: a one-time `token`, the `workspace` folder, the `files` to write into
it, the `user_id` to run the steps as (under root, else null), per-process `rlimits`, and the
`steps`. Each step runs with its own pipes, in a session of its own, and is read as the harness
reads that language: everything, until it exits (`wait_for_output` false) or until it has
exited and its output has closed (true: `subprocess.run`'s `capture_output`); or, `throttle`,
at most 1024 bytes per stream every 0.1 s for `time_limit * 10` rounds, ending when it exits
(the harness's `safe_subprocess.run`, under which a program whose output outgrows its pipe
blocks). After each step its process group is killed; a step that does not exit with status 0
ends the job. The report is one line on stdout: the token, then a JSON list with each step's
`exit_code` (null: stopped at its time limit) and the start of its `stdout` and `stderr`.

The steps' processes cannot reach the report: this process is not dumpable (under the same
user id its /proc files, memory and file descriptors are closed to them), under root it keeps
user id 0 while the steps run as `user_id`, and as the namespace's first process it ignores
their signals.
"""

import ctypes
import json
import os
import resource
import select
import signal
import sys
import time

PR_SET_DUMPABLE = 4
THROTTLE_BYTES = 1024  # the harness's MAX_BYTES_PER_READ
THROTTLE_PAUSE = 0.1  # its SLEEP_BETWEEN_READS
POLL_SECONDS = 0.05


def set_dumpable(dumpable: bool) -> None:
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, int(dumpable), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl(PR_SET_DUMPABLE, {int(dumpable)}) failed")


def reap(pid: int) -> int | None:
    """Reap every ended child (orphans come to the first process); `pid`'s exit code if it ended
    (negative: the signal that ended it, as `Popen.returncode`)."""
    code = None
    while True:
        try:
            ended, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return code
        if ended == 0:
            return code
        if ended == pid:
            code = os.waitstatus_to_exitcode(status)


def start(step: dict, job: dict) -> tuple[int, list[int]]:
    """Fork and exec one step; its pid and the read ends of its stdout and stderr."""
    if step.get("stdin") is None:
        stdin_read, stdin_write = os.open(os.devnull, os.O_RDONLY), None
    else:
        stdin_read, stdin_write = os.pipe()
    pipes = [os.pipe(), os.pipe()]
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            os.dup2(stdin_read, 0)
            os.dup2(pipes[0][1], 1)
            os.dup2(pipes[1][1], 2)
            os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
            for number in (signal.SIGPIPE, signal.SIGXFSZ):
                signal.signal(number, signal.SIG_DFL)
            set_dumpable(True)  # its own /proc files, as any process's (execve would do it too)
            with open("/proc/self/oom_score_adj", "w") as file:
                file.write("1000")  # the kernel's first choice when the group's memory is full
            user_id = job["user_id"]
            if user_id is not None:
                os.setgroups([])
                os.setresgid(user_id, user_id, user_id)
                os.setresuid(user_id, user_id, user_id)
            for name, value in job["rlimits"]:
                resource.setrlimit(getattr(resource, name), (value, value))
            os.execve(step["argv"][0], step["argv"], os.environ)
        except BaseException as error:  # noqa: B036 - whatever failed, the child must not return
            os.write(2, f"cannot run {step['argv'][0]}: {error}\n".encode())
        os._exit(127)
    os.close(stdin_read)
    for _, write_end in pipes:
        os.close(write_end)
    if stdin_write is not None:
        try:
            os.write(stdin_write, step["stdin"].encode())
        except BrokenPipeError:
            pass
        os.close(stdin_write)
    return pid, [read_end for read_end, _ in pipes]


class Kept:
    """The first `limit` bytes of each stream."""

    def __init__(self, fds: list[int], limit: int):
        self.limit = limit
        self.data = {fd: bytearray() for fd in fds}

    def read(self, fd: int, size: int) -> bytes | None:
        """One read of at most `size` bytes: the bytes (b"" at the end), or None if none are ready."""
        try:
            chunk = os.read(fd, size)
        except BlockingIOError:
            return None
        buffer = self.data[fd]
        buffer += chunk[: max(self.limit - len(buffer), 0)]
        return chunk

    def text(self, fd: int) -> str:
        return self.data[fd].decode("utf-8", errors="replace")


def read_all(pid: int, fds: list[int], kept: Kept, deadline: float, wait_for_output: bool) -> int | None:
    """Read the step's output as it comes until it exits (and, if asked, its output has closed):
    its exit code, or None if that did not happen by the deadline."""
    open_fds = list(fds)
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    code = None
    while True:
        if code is None:
            code = reap(pid)
        if code is not None and not (wait_for_output and open_fds):
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        watched = open_fds + ([pidfd] if pidfd is not None and code is None else [])
        timeout = min(remaining, POLL_SECONDS) if pidfd is None and code is None else remaining
        if watched:
            ready = select.select(watched, [], [], timeout)[0]
        else:
            time.sleep(timeout)
            ready = []
        for fd in ready:
            if fd != pidfd and kept.read(fd, 65536) == b"":
                open_fds.remove(fd)
    if pidfd is not None:
        os.close(pidfd)
    if wait_for_output and open_fds:
        return None
    for fd in open_fds:  # what it wrote before it exited
        os.set_blocking(fd, False)
        for _ in range(16):
            if not kept.read(fd, 65536):
                break
    return code


def read_throttled(pid: int, fds: list[int], kept: Kept, time_limit: float) -> int | None:
    """The harness's loop: 1024 bytes per stream, then a look at the exit, then 0.1 s of sleep."""
    for fd in fds:
        os.set_blocking(fd, False)
    for _ in range(int(time_limit * 10)):
        for fd in fds:
            kept.read(fd, THROTTLE_BYTES)
        code = reap(pid)
        if code is not None:
            return code
        time.sleep(THROTTLE_PAUSE)
    return None


def run_step(step: dict, job: dict) -> dict:
    deadline = time.monotonic() + step["time_limit"]
    pid, fds = start(step, job)
    kept = Kept(fds, job["output_limit"])
    if step.get("throttle"):
        code = read_throttled(pid, fds, kept, step["time_limit"])
    else:
        code = read_all(pid, fds, kept, deadline, step.get("wait_for_output", False))
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    reap(pid)
    result = {"exit_code": code, "stdout": kept.text(fds[0]), "stderr": kept.text(fds[1])}
    for fd in fds:
        os.close(fd)
    return result


def main() -> None:
    set_dumpable(False)
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # no handler: the namespace's first process ignores it
    job = json.loads(sys.stdin.buffer.read())
    workspace, user_id = job["workspace"], job["user_id"]
    for name, text in job["files"].items():
        path = os.path.join(workspace, name)
        with open(path, "w", encoding="utf-8") as file:
            file.write(text)
        if user_id is not None:
            os.chown(path, user_id, user_id)
    if user_id is not None:
        os.chown(workspace, user_id, user_id)
    results = []
    for step in job["steps"]:
        results.append(run_step(step, job))
        if results[-1]["exit_code"] != 0:
            break
    sys.stdout.write(f"{job['token']} {json.dumps(results)}\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
