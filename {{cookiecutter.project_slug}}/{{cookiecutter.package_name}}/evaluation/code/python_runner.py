"""Run `program.py` (in the current folder) as the harness runs a Python program, and report.

Inside the sandbox, as `python -I -c <this file's text> <seconds>`, with a one-time token on
stdin. As bigcode-evaluation-harness does: the harness's reliability guard sets the same
functions to None (a program that calls one fails there, so here too), output is swallowed,
stdin cannot be read, and a timer raises a timeout after `seconds`. The program passes only
if `exec` of its whole text returns: an early `sys.exit` fails, as in the harness. The verdict
goes to a copy of the original stdout, after the token (a program cannot print a pass).
"""

import builtins
import contextlib
import faulthandler
import io
import os
import signal
import sys


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


def raise_timeout(signum, frame):
    raise TimeoutException("Timed out!")


def main() -> None:
    seconds = float(sys.argv[1])
    token = sys.stdin.readline().strip()
    verdict_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    with open("program.py", encoding="utf-8") as file:
        program = file.read()
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
        result = "passed"
    except TimeoutException:
        result = "timed out"
    except BaseException as error:  # noqa: B036 - the harness fails a program on any exception
        result = f"failed: {error}"
    os.write(verdict_fd, f"{token} {' '.join(result.split())}\n".encode("utf-8", "replace"))


if __name__ == "__main__":
    main()
