"""What a program sees of the file system: the tools it runs with, read-only, and two folders in memory.

The root is an empty tmpfs made for the program. Mounted into it, read-only: /usr (and /bin,
/lib... as on the host: links into /usr, or folders), the few files of /etc that the dynamic
loader and the compilers read, and the folder of each tool outside /usr (a virtual environment
and the Python it was made from, say). Its own: a workspace folder (`WORKSPACE`) and /tmp, both
size-capped tmpfs charged to the program's memory cgroup, gone when it ends; a /proc of its own
process namespace, and a minimal read-only /dev. Nothing else: no /home or /root, no /run, no
host /tmp, no /sys, no sockets, no other program's folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

WORKSPACE = "/workspace"
TOP_LEVEL_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")  # into /usr on merged systems
ETC_ENTRIES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives")


def system_folders() -> list[Path]:
    """/usr, and those of /bin, /lib... that are folders rather than links into /usr."""
    return [Path("/usr")] + [Path("/", name) for name in TOP_LEVEL_LINKS
                             if Path("/", name).is_dir() and not Path("/", name).is_symlink()]


def tool_folders(executables: Iterable[str]) -> list[Path]:
    """The folders to show for these executables besides the system ones: each one's prefix
    (`<prefix>/bin/<tool>`), for the path given and the file it resolves to, without nesting."""
    system = set(system_folders())
    folders = set(system)
    for executable in executables:
        for path in (Path(executable), Path(os.path.realpath(executable))):
            folders.add(path.parent.parent if path.parent.parent != Path("/") else path.parent)
    return sorted(folder for folder in folders - system
                  if not any(other in folder.parents for other in folders))


def parents_arguments(targets: Sequence[Path]) -> list[str]:
    """bubblewrap arguments making each folder above `targets`, enterable by anyone."""
    arguments, made = [], set()
    for target in targets:
        for parent in reversed(target.parents[:-1]):
            if parent not in made:
                arguments += ["--perms", "0755", "--dir", str(parent)]
                made.add(parent)
    return arguments


def view_arguments(executables: Iterable[str], size_bytes: int | None) -> list[str]:
    """bubblewrap arguments for the whole view; tmpfs folders capped at `size_bytes` if given
    (bubblewrap 0.7 and later; the memory cgroup caps them either way)."""
    size = ["--size", str(size_bytes)] if size_bytes else []
    arguments = []
    for folder in system_folders():
        arguments += ["--ro-bind", str(folder), str(folder)]
    for name in TOP_LEVEL_LINKS:
        if Path("/", name).is_symlink():
            arguments += ["--symlink", os.readlink(Path("/", name)), f"/{name}"]
    etc = [Path("/etc", name) for name in ETC_ENTRIES if Path("/etc", name).exists()]
    folders = tool_folders(executables)
    arguments += parents_arguments([*etc, *folders])
    for path in [*etc, *folders]:
        arguments += ["--ro-bind", str(path), str(path)]
    return [
        *arguments,
        "--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev",
        "--perms", "1777", *size, "--tmpfs", "/tmp",
        "--perms", "0755", *size, "--tmpfs", WORKSPACE,
        "--chdir", WORKSPACE,
    ]
