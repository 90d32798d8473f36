"""Deleting the folder an unsandboxed program ran in, without recursion: any depth, any permissions it left.

(A sandboxed program's files need no cleaning: they live in tmpfs that vanish with its mount
namespace.)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def enter(name: str, parent_fd: int | None) -> int:
    """Open the folder `name` (in `parent_fd`) after giving its owner every right on it."""
    os.chmod(name, 0o700, dir_fd=parent_fd)
    return os.open(name, DIRECTORY, dir_fd=parent_fd)


def remove_tree(path: Path) -> None:
    """Delete `path` and everything in it, one folder open at a time (never recursing)."""
    fd = enter(str(path), None)
    names: list[str] = []  # the folders entered below `path`
    try:
        while True:
            subfolder = None
            with os.scandir(fd) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        subfolder = entry.name
                        break
                    os.unlink(entry.name, dir_fd=fd)
            if subfolder is not None:
                child = enter(subfolder, fd)
                os.close(fd)
                fd = child
                names.append(subfolder)
                continue
            if not names:
                break
            parent = os.open("..", DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = parent
            os.rmdir(names.pop(), dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(path)


def remove_quietly(path: Path) -> None:
    """`remove_tree`, with a warning instead of an error: a program never ends the evaluation."""
    try:
        remove_tree(path)
    except OSError as error:
        print(f"warning: could not delete a program's folder {path}: {error}", file=sys.stderr)
