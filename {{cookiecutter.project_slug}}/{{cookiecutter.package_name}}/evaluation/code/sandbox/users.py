"""User ids for programs run under root: a block of its own for each evaluation, held by a lock file.

Evaluation k (the first free lock, `k.lock`) runs its programs as `UID_BASE + k * BLOCK_SIZE + i`,
worker i taking a user id of its own. The lock is a `flock` held for as long as the evaluation
runs, so that two evaluations at once (on one machine, as root) never share a user id; the
kernel drops it when the process ends, however it ends.
"""

from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path

from .tools import CannotExecute

UID_BASE = 1_900_000_000
BLOCK_SIZE = 1024  # user ids (so workers) of one evaluation
BLOCKS = 2048  # evaluations at once; the last user id stays below 2**31
LOCK_FOLDERS = (Path("/run/flowertune-code-eval"), Path("/var/tmp/flowertune-code-eval"))


def private_folder(path: Path) -> Path:
    """`path` as a folder only root may change, made if missing; OSError if it is anything else."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
        raise PermissionError(f"{path} is not a folder only root may change")
    return path


class UserIdBlock:
    """The user ids of one evaluation's workers; `close` hands them back."""

    def __init__(self, workers: int):
        if workers > BLOCK_SIZE:
            raise CannotExecute(f"--workers {workers} is more than the {BLOCK_SIZE} user ids the "
                                f"sandbox gives one evaluation: use at most {BLOCK_SIZE}")
        self.lock_fd, self.index = self.acquire()
        self.first = UID_BASE + self.index * BLOCK_SIZE
        self.user_ids = list(range(self.first, self.first + workers))

    @staticmethod
    def acquire() -> tuple[int, int]:
        """The open lock file and index of the first block no running evaluation holds."""
        problems = []
        for folder in LOCK_FOLDERS:
            try:
                private_folder(folder)
            except OSError as error:
                problems.append(str(error))
                continue
            for index in range(BLOCKS):
                fd = os.open(folder / f"{index}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd, index
                except BlockingIOError:
                    os.close(fd)
            problems.append(f"all {BLOCKS} blocks in {folder} are held")
        raise CannotExecute(f"no block of user ids for the programs is free: {'; '.join(problems)}")

    def close(self) -> None:
        if self.lock_fd >= 0:
            os.close(self.lock_fd)
            self.lock_fd = -1
