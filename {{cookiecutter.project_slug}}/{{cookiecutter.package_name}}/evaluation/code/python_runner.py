"""Run `program.py` (in the current folder) as the harness runs a Python program, and report.

Inside the sandbox, as `python -I -c <this file's text> <seconds>`, with a one-time token on
stdin; the verdict is one line on stdout: the token, then `passed`, `timed out` or
`failed: <reason>`.

As bigcode-evaluation-harness does, the program runs in a forked process of its own under the
harness's reliability guard (the same functions set to None: a program that calls one fails
there, so here too), its output swallowed, its stdin unreadable, and a timer that raises a
timeout after `seconds`. It passes only if `exec` of its whole text returns: an early
`sys.exit` fails, and an early `os._exit` leaves no result ("timed out"), as in the harness.
What the harness's process had done before its guard is done here too: `tempfile`'s folder is
chosen, and numpy, pandas and multiprocessing, which its workers had already imported (they
cannot be imported under the guard), are imported when the program names them.

Judging: this process forks the program's, makes itself undumpable (so that the program's
process, run by the same user, can neither trace it nor read its memory or file descriptors
under /proc), reads the token, and only then lets the program start. The program's process
holds neither the token nor this process's stdout: it passes by ending with `PASS_EXIT_STATUS`
once `exec` has returned, and what it reports on its pipe can only read as a failure. Patching
`os.write` (or anything else in the program's process) or looking for the token in its frames,
locals or garbage collector therefore forges no pass. The limit, as for any judge that goes by
what the program's own process does: a program that knows this protocol (this text is on its
command line) can still end with `PASS_EXIT_STATUS` before its asserts run. The harness can be
fooled so too, and more easily (its verdict is kept in the program's process); and programs
that fool the harness without trying, such as one whose result has an `__eq__` that is always
true, pass here as they pass there.
"""

import builtins
import contextlib
import faulthandler
import importlib
import io
import os
import signal
import sys

PASS_EXIT_STATUS = 93  # how the program's process ends once `exec` of the program has returned
REASON_LIMIT = 1000  # bytes of a failure's reason reported
# Modules the harness's workers had imported before their guard (numpy, pandas through
# `datasets`, multiprocessing to run them) whose import fails under it.
PREPARED_MODULES = ("numpy", "pandas", "multiprocessing")
PR_SET_DUMPABLE = 4  # prctl(2)


class TimeoutException(Exception):
    """The program ran past its time."""


class WriteOnlyStringIO(io.StringIO):
    """Takes what the program prints; reading from it fails, as the harness's stdin does."""

    def read(self, *args, **kwargs):
        raise OSError

    def readline(self, *args, **kwargs):
        raise OSError

    def readlines(self, *args, **kwargs):
        raise OSError

    def readable(self, *args, **kwargs):
        return False


def apply_harness_guard() -> None:
    """The harness's `reliability_guard()` (no memory limit): these become None."""
    import shutil
    import subprocess

    faulthandler.disable()
    builtins.exit = None
    builtins.quit = None
    builtins.help = None
    os.environ["OMP_NUM_THREADS"] = "1"
    for name in (
        "kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid", "fork",
        "forkpty", "killpg", "rename", "renames", "truncate", "replace", "unlink", "fchmod",
        "fchown", "chmod", "chown", "chroot", "lchflags", "lchmod", "lchown", "getcwd", "chdir",
    ):
        setattr(os, name, None)
    shutil.rmtree = None
    shutil.move = None
    shutil.chown = None
    subprocess.Popen = None
    for name in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
        sys.modules[name] = None


def prepare_as_the_harness(program: str) -> None:
    """What the harness's process had done before its guard, that a program may rely on."""
    import tempfile

    tempfile.gettempdir()  # choosing the folder needs os.getcwd, which the guard disables
    for name in PREPARED_MODULES:
        if name in program:
            try:
                importlib.import_module(name)
            except ImportError:
                pass  # then the program's own import fails, as it would have


def raise_timeout(signum, frame):
    raise TimeoutException("Timed out!")


def run_program(program: str, seconds: float, report_fd: int) -> None:
    """In the program's process: run it as the harness does, then end with its outcome."""
    write, end = os.write, os._exit  # bound before the program can replace them
    prepare_as_the_harness(program)
    apply_harness_guard()
    stream = WriteOnlyStringIO()
    try:
        with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
            sys.stdin = stream
            signal.signal(signal.SIGALRM, raise_timeout)
            signal.setitimer(signal.ITIMER_REAL, seconds)
            try:
                exec(program, {})
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
    except TimeoutException:
        end(1)  # no result: "timed out"
    except BaseException as error:  # noqa: B036 - the harness fails a program on any exception
        reason = b"\nF" + " ".join(f"{error}".split()).encode("utf-8", "replace")[:REASON_LIMIT]
    else:
        end(PASS_EXIT_STATUS)
    write(report_fd, reason)
    end(1)


def make_undumpable() -> None:
    """Keep this process's memory and file descriptors from its children's reach (prctl)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (ImportError, OSError, AttributeError):
        pass  # no prctl: a same-user program could then read the token under /proc


def read_token() -> str:
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(0, 64)
        if not chunk:
            break
        data += chunk
    return data.decode("ascii", "replace").strip()


def outcome(child: int, report_fd: int) -> str:
    """The harness's result for the program, once its process has ended."""
    _, status = os.waitpid(child, 0)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == PASS_EXIT_STATUS:
        return "passed"
    os.set_blocking(report_fd, False)
    report = b""
    try:
        while chunk := os.read(report_fd, 65536):
            report = (report + chunk)[-(REASON_LIMIT + 2) :]
    except BlockingIOError:
        pass
    reason = report.rpartition(b"\n")[2]  # what the program itself wrote there comes before
    if reason.startswith(b"F"):
        return "failed: " + reason[1:].decode("utf-8", "replace")
    return "timed out"  # also the harness's word for a worker that left no result


def main() -> None:
    seconds = float(sys.argv[1])
    end = os._exit
    with open("program.py", encoding="utf-8") as file:
        program = file.read()
    report_read, report_write = os.pipe()
    start_read, start_write = os.pipe()
    child = os.fork()
    if child == 0:  # the program's process: without the token's stdin or the verdict's stdout
        try:
            os.close(report_read)
            os.close(start_write)
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.close(devnull)
            if os.read(start_read, 1):
                os.close(start_read)
                run_program(program, seconds, report_write)
        finally:
            end(1)
    os.close(report_write)
    os.close(start_read)
    make_undumpable()
    token = read_token()
    os.write(start_write, b"go")
    os.close(start_write)
    result = outcome(child, report_read)
    os.write(1, f"{token} {' '.join(result.split())}\n".encode("utf-8", "replace"))


if __name__ == "__main__":
    main()
