"""Whole-program limits: a cgroup per program caps the memory, processes and CPU share of all its processes.

The memory a program's group is charged with is all of it: its processes' memory, the files it
writes (its folder and /tmp are in memory), memfds and shared memory, and the kernel's own
records of them (a file count costs memory too). Reaching the cap makes writes fail and the
kernel kills the group's largest process; the host keeps the rest. The evaluation's group holds
its programs together to the cap plus `OTHER_PROGRAM_SHARE` for each other worker: programs
running at once never take the host more than that, and one program at its cap leaves each
other one that much (so that it is the one its own cap stops).

Where the groups are made, in this order:
- cgroup v2 with the memory and pids controllers, under root: a group of the evaluation's own
  at the top of the hierarchy, one group per program inside it.
- cgroup v2 for another user: the cgroup the evaluation started in, if it is delegated to that
  user and holds the evaluation alone (`systemd-run --user --scope -p Delegate=yes ...`): the
  evaluation moves into a leaf `evaluation` of it and the programs' groups go beside it.
- cgroup v1 `memory` and `pids` hierarchies (this user must be able to create groups below
  its own; root can), and `cpu` where it may.
Neither: `CannotExecute` says what is missing. The CPU share is the kernel's fair split between
sibling groups: a program with 256 busy processes gets the CPU time of one program, and the
evaluation's group weighs as much as `workers` processes beside the rest of the machine.
"""

from __future__ import annotations

import errno
import itertools
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .tools import UNSAFE_FLAG, CannotExecute

MAX_PROCESSES = 256  # processes and threads of one program (node alone runs about a dozen)
OTHER_PROGRAM_SHARE = 256_000_000  # bytes: g++ on bits/stdc++.h holds 200 MB, Python with pandas 110
REQUIRED = ("memory", "pids")
OPTIONAL = ("cpu",)
UNIFIED = "unified"  # the one cgroup v2 hierarchy, standing for all its controllers
EVALUATION_LEAF = "evaluation"  # where a delegated cgroup v2 evaluation moves itself
DELEGATE_HINT = (
    "run the evaluation as root, or in a cgroup delegated to you "
    "(systemd-run --user --scope -p Delegate=yes python -m ...)"
)


@dataclass(frozen=True)
class Mount:
    """A mounted cgroup hierarchy: where it is, which part of it, which controllers."""

    point: Path
    root: str
    controllers: frozenset[str]  # empty for cgroup v2 (read cgroup.controllers)
    unified: bool

    def folder(self, cgroup_path: str) -> Path:
        """The folder of the group at `cgroup_path` (as /proc/self/cgroup names it)."""
        relative = cgroup_path[len(self.root):] if cgroup_path.startswith(self.root) else cgroup_path
        return self.point / relative.lstrip("/")


def cgroup_mounts() -> list[Mount]:
    """The cgroup hierarchies this process sees (from /proc/self/mountinfo)."""
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        separator = fields.index("-")
        fstype, super_options = fields[separator + 1], fields[separator + 3]
        if fstype in ("cgroup", "cgroup2"):
            controllers = frozenset(super_options.split(",")) & {*REQUIRED, *OPTIONAL}
            mounts.append(Mount(Path(fields[4]), fields[3], controllers, fstype == "cgroup2"))
    return mounts


def own_cgroups() -> dict[str, str]:
    """This process's group per v1 controller, and `UNIFIED` for its v2 group."""
    groups = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        number, controllers, path = line.split(":", 2)
        if number == "0" and not controllers:
            groups[UNIFIED] = path
        for controller in controllers.split(","):
            groups[controller] = path
    return groups


def write(path: Path, text: str) -> None:
    with open(path, "w") as file:
        file.write(text)


def enable_controllers(group: Path, required: bool = True) -> None:
    """Give `group`'s children the memory and pids controllers (and cpu, where it can)."""
    for controller in (*REQUIRED, *OPTIONAL):
        try:
            write(group / "cgroup.subtree_control", f"+{controller}")
        except OSError:
            if controller in REQUIRED and required:
                raise


def kill_members(group: Path) -> None:
    """SIGKILL every process in `group`."""
    if (group / "cgroup.kill").exists():
        write(group / "cgroup.kill", "1")
        return
    for pid in (group / "cgroup.procs").read_text().split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass


def remove_group(group: Path) -> None:
    """Delete `group` and its children, killing what is left in them; a warning if it stays."""
    error: OSError | None = None
    for _ in range(50):
        try:
            for child in [path for path in group.iterdir() if path.is_dir()]:
                remove_group(child)
            group.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as failure:
            error = failure
            if failure.errno != errno.EBUSY:
                break
            kill_members(group)
            time.sleep(0.1)
    print(f"warning: could not remove the cgroup {group}: {error}", file=sys.stderr)


def make_group(group: Path) -> Path:
    """`group`, made; one left by an evaluation that was killed is emptied first."""
    try:
        group.mkdir()
    except FileExistsError:
        for child in [path for path in group.iterdir() if path.is_dir()]:
            remove_group(child)
    return group


def unified_parent(mount: Mount, own_path: str, name: str) -> Path:
    """The evaluation's cgroup v2 group, with the controllers its programs need."""
    top = mount.point
    if os.access(top, os.W_OK):  # root (or a container's own writable hierarchy)
        enable_controllers(top, required=False)
        group = make_group(top / name)
        try:
            enable_controllers(group)
            return group
        except OSError:
            remove_group(group)
    own = mount.folder(own_path)
    if own.name == EVALUATION_LEAF:  # moved there by an earlier sandbox of this evaluation
        base = own.parent
    else:
        members = (own / "cgroup.procs").read_text().split()
        if not os.access(own, os.W_OK) or members != [str(os.getpid())]:
            raise PermissionError(f"the evaluation's cgroup {own} is not delegated to it alone")
        leaf = make_group(own / EVALUATION_LEAF)
        write(leaf / "cgroup.procs", str(os.getpid()))
        base = own
    enable_controllers(base)
    group = make_group(base / name)
    enable_controllers(group)
    return group


def evaluation_groups(name: str) -> dict[str, Path]:
    """The evaluation's group per hierarchy (`UNIFIED`, or each v1 controller), made."""
    mounts, own = cgroup_mounts(), own_cgroups()
    problems = []
    for mount in [mount for mount in mounts if mount.unified]:
        try:
            available = (mount.point / "cgroup.controllers").read_text().split()
        except OSError:
            continue
        missing = [controller for controller in REQUIRED if controller not in available]
        if missing:
            problems.append(f"cgroup v2 at {mount.point} lacks the {' and '.join(missing)} controller")
            continue
        try:
            return {UNIFIED: unified_parent(mount, own.get(UNIFIED, "/"), name)}
        except OSError as error:
            problems.append(f"cgroup v2 at {mount.point}: {error}")
    by_controller = {controller: mount for mount in mounts if not mount.unified
                     for controller in mount.controllers}
    missing = [controller for controller in REQUIRED if controller not in by_controller]
    if missing:
        problems.append(f"no cgroup v1 {' or '.join(missing)} hierarchy is mounted")
    else:
        groups: dict[str, Path] = {}
        try:
            for controller in (*REQUIRED, *OPTIONAL):
                if controller in by_controller:
                    folder = by_controller[controller].folder(own.get(controller, "/"))
                    try:
                        groups[controller] = make_group(folder / name)
                    except OSError:
                        if controller in REQUIRED:
                            raise
            return groups
        except OSError as error:
            for group in groups.values():
                remove_group(group)
            problems.append(f"cgroup v1: {error}")
    raise CannotExecute(
        "the programs' memory and processes cannot be capped as a whole here (no cgroup this user "
        f"may create groups in: {'; '.join(problems) or 'no cgroup hierarchy is mounted'}): "
        f"{DELEGATE_HINT}; or pass {UNSAFE_FLAG} to run the programs unsandboxed at your own risk"
    )


class ProgramLimits:
    """One evaluation's cgroups; `program()` makes each program's group, with its caps."""

    def __init__(self, name: str, memory_bytes: int, workers: int, max_processes: int = MAX_PROCESSES):
        self.memory_bytes = memory_bytes
        self.max_processes = max_processes
        self.parents = evaluation_groups(name)
        self.numbers = itertools.count()
        self.total_bytes = memory_bytes + (workers - 1) * OTHER_PROGRAM_SHARE
        for kind, parent in self.parents.items():
            self.cap_memory(kind, parent, self.total_bytes)
        try:
            if "cpu" in self.parents:  # cgroup v1: 1024 shares a process
                write(self.parents["cpu"] / "cpu.shares", str(min(1024 * workers, 262144)))
            elif (self.parents.get(UNIFIED, Path("/nonexistent")) / "cpu.weight").exists():  # v2: 100
                write(self.parents[UNIFIED] / "cpu.weight", str(min(100 * workers, 10000)))
        except OSError:  # a CPU share the kernel refuses: the default one stays
            pass

    @property
    def description(self) -> str:
        """Which cgroups hold the programs, e.g. `cgroup v1 (memory, pids, cpu)`."""
        if UNIFIED in self.parents:
            controllers = (self.parents[UNIFIED] / "cgroup.subtree_control").read_text().split()
            return f"cgroup v2 ({', '.join(controllers)})"
        return f"cgroup v1 ({', '.join(self.parents)})"

    @staticmethod
    def cap_memory(kind: str, group: Path, memory_bytes: int) -> None:
        """Cap `group`'s memory (swap included) if `kind` is a hierarchy with memory."""
        if kind == UNIFIED:
            write(group / "memory.max", str(memory_bytes))
            if (group / "memory.swap.max").exists():
                write(group / "memory.swap.max", "0")
        elif kind == "memory":
            write(group / "memory.limit_in_bytes", str(memory_bytes))
            if (group / "memory.memsw.limit_in_bytes").exists():  # memory and swap together
                write(group / "memory.memsw.limit_in_bytes", str(memory_bytes))

    def apply(self, kind: str, group: Path) -> None:
        """Write the caps into one program's group of one hierarchy."""
        self.cap_memory(kind, group, self.memory_bytes)
        if kind in (UNIFIED, "pids"):
            write(group / "pids.max", str(self.max_processes))

    @contextmanager
    def program(self) -> Iterator[list[Path]]:
        """A program's groups, capped: the `cgroup.procs` files its first process joins.
        Afterwards whatever is left in them is killed and they are deleted."""
        name = f"program-{next(self.numbers)}"
        groups = []
        try:
            for kind, parent in self.parents.items():
                groups.append(parent / name)
                groups[-1].mkdir()
                self.apply(kind, groups[-1])
            yield [group / "cgroup.procs" for group in groups]
        finally:
            for group in groups:
                remove_group(group)

    def close(self) -> None:
        for group in self.parents.values():
            remove_group(group)
