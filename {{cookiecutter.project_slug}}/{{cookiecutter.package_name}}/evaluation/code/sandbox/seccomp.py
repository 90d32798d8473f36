"""The seccomp filter bubblewrap loads: calls and socket families no benchmark program needs fail (EPERM).

Refused: sockets other than AF_UNIX, AF_INET and AF_INET6 (no vsock, netlink, packet...),
io_uring, the kernel keyring, new namespaces (unshare, setns, clone with a namespace flag),
mounting, tracing or reading other processes (ptrace, process_vm_*, pidfd_getfd, kcmp), bpf,
perf_event_open, userfaultfd, kernel modules, kexec, swap, reboot and the like. clone3 fails
with ENOSYS (its flags cannot be inspected), so the C library falls back to clone. Calls of
another architecture (32-bit or x32 ones on x86_64) kill the process.

The filter is classic BPF, written here as `struct sock_filter` records for x86_64 and aarch64.
"""

from __future__ import annotations

import errno
import platform
import struct
from dataclasses import dataclass

from .tools import CannotExecute

# Classic BPF instructions (linux/filter.h) and seccomp return values (linux/seccomp.h).
LOAD_WORD = 0x20  # BPF_LD | BPF_W | BPF_ABS
JUMP_EQUAL = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
JUMP_AT_LEAST = 0x35  # BPF_JMP | BPF_JGE | BPF_K
JUMP_ANY_BIT = 0x45  # BPF_JMP | BPF_JSET | BPF_K
RETURN = 0x06  # BPF_RET | BPF_K
ALLOW = 0x7FFF0000
KILL_PROCESS = 0x80000000
ERRNO = 0x00050000
# Offsets in struct seccomp_data: nr, arch, then the arguments (the low half of the first).
NR_OFFSET, ARCH_OFFSET, FIRST_ARGUMENT_OFFSET = 0, 4, 16

X32_SYSCALL_BIT = 0x40000000
NAMESPACE_FLAGS = (
    0x00000080  # CLONE_NEWTIME
    | 0x00020000  # CLONE_NEWNS
    | 0x02000000  # CLONE_NEWCGROUP
    | 0x04000000  # CLONE_NEWUTS
    | 0x08000000  # CLONE_NEWIPC
    | 0x10000000  # CLONE_NEWUSER
    | 0x20000000  # CLONE_NEWPID
    | 0x40000000  # CLONE_NEWNET
)
ALLOWED_SOCKET_FAMILIES = (1, 2, 10)  # AF_UNIX, AF_INET, AF_INET6

DENIED_CALLS = (
    "io_uring_setup", "io_uring_enter", "io_uring_register", "keyctl", "add_key", "request_key",
    "setns", "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen",
    "fsconfig", "fsmount", "fspick", "mount_setattr", "ptrace", "process_vm_readv",
    "process_vm_writev", "pidfd_getfd", "kcmp", "bpf", "perf_event_open", "userfaultfd",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
    "swapon", "swapoff", "acct", "quotactl", "syslog", "open_by_handle_at", "name_to_handle_at",
    "fanotify_init", "lookup_dcookie", "vhangup", "iopl", "ioperm",
)


@dataclass(frozen=True)
class Architecture:
    """One architecture's audit id and system call numbers (those the filter names)."""

    audit_arch: int
    numbers: dict[str, int]
    has_x32: bool


# From the kernel's uapi headers: asm/unistd_64.h (x86_64) and asm-generic/unistd.h (aarch64).
COMMON_NEW_CALLS = {
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428,
    "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "clone3": 435,
    "pidfd_getfd": 438, "mount_setattr": 442,
}
ARCHITECTURES = {
    "x86_64": Architecture(0xC000003E, {
        **COMMON_NEW_CALLS, "socket": 41, "clone": 56, "ptrace": 101, "syslog": 103, "vhangup": 153,
        "pivot_root": 155, "chroot": 161, "acct": 163, "mount": 165, "umount2": 166, "swapon": 167,
        "swapoff": 168, "reboot": 169, "iopl": 172, "ioperm": 173, "init_module": 175,
        "delete_module": 176, "quotactl": 179, "lookup_dcookie": 212, "kexec_load": 246,
        "add_key": 248, "request_key": 249, "keyctl": 250, "unshare": 272, "perf_event_open": 298,
        "fanotify_init": 300, "name_to_handle_at": 303, "open_by_handle_at": 304, "setns": 308,
        "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312, "finit_module": 313,
        "kexec_file_load": 320, "bpf": 321, "userfaultfd": 323,
    }, has_x32=True),
    "aarch64": Architecture(0xC00000B7, {
        **COMMON_NEW_CALLS, "lookup_dcookie": 18, "umount2": 39, "mount": 40, "pivot_root": 41,
        "chroot": 51, "vhangup": 58, "quotactl": 60, "acct": 89, "unshare": 97, "kexec_load": 104,
        "init_module": 105, "delete_module": 106, "syslog": 116, "ptrace": 117, "reboot": 142,
        "socket": 198, "add_key": 217, "request_key": 218, "keyctl": 219, "clone": 220,
        "swapon": 224, "swapoff": 225, "perf_event_open": 241, "fanotify_init": 262,
        "name_to_handle_at": 264, "open_by_handle_at": 265, "setns": 268, "process_vm_readv": 270,
        "process_vm_writev": 271, "kcmp": 272, "finit_module": 273, "bpf": 280, "userfaultfd": 282,
        "kexec_file_load": 294,
    }, has_x32=False),
}


def assemble(program: list[tuple]) -> bytes:
    """`struct sock_filter` records from (code, k, jump if true, jump if false) tuples whose
    jumps name labels further on; a label is a lone string placed before the instruction it marks."""
    labels, instructions = {}, []
    for item in program:
        if isinstance(item, str):
            labels[item] = len(instructions)
        else:
            instructions.append(item)
    records = []
    for index, (code, k, if_true, if_false) in enumerate(instructions):
        offsets = [labels[target] - index - 1 if isinstance(target, str) else target
                   for target in (if_true, if_false)]
        if not all(0 <= offset <= 255 for offset in offsets):
            raise ValueError(f"jump out of range at instruction {index}: {offsets}")
        records.append(struct.pack("=HBBI", code, offsets[0], offsets[1], k))
    return b"".join(records)


def filter_program(machine: str | None = None) -> bytes:
    """The filter for `machine` (default: this one's), as bubblewrap's `--seccomp` reads it."""
    machine = machine or platform.machine()
    if machine not in ARCHITECTURES:
        raise CannotExecute(
            f"the sandbox has no seccomp filter for this machine's architecture {machine!r} "
            f"(it has one for {', '.join(ARCHITECTURES)})")
    arch = ARCHITECTURES[machine]
    deny, enosys = ERRNO | errno.EPERM, ERRNO | errno.ENOSYS
    program: list = [
        (LOAD_WORD, ARCH_OFFSET, 0, 0),
        (JUMP_EQUAL, arch.audit_arch, 0, "kill"),
        (LOAD_WORD, NR_OFFSET, 0, 0),
    ]
    if arch.has_x32:
        program.append((JUMP_AT_LEAST, X32_SYSCALL_BIT, "kill", 0))
    program += [(JUMP_EQUAL, arch.numbers[name], "deny", 0) for name in DENIED_CALLS if name in arch.numbers]
    program += [
        (JUMP_EQUAL, arch.numbers["clone3"], "enosys", 0),
        (JUMP_EQUAL, arch.numbers["socket"], "socket", 0),
        (JUMP_EQUAL, arch.numbers["clone"], "namespaces", 0),
        (JUMP_EQUAL, arch.numbers["unshare"], "namespaces", 0),
        (RETURN, ALLOW, 0, 0),
        "socket", (LOAD_WORD, FIRST_ARGUMENT_OFFSET, 0, 0),
        *[(JUMP_EQUAL, family, "allow", 0) for family in ALLOWED_SOCKET_FAMILIES],
        (RETURN, deny, 0, 0),
        "namespaces", (LOAD_WORD, FIRST_ARGUMENT_OFFSET, 0, 0),
        (JUMP_ANY_BIT, NAMESPACE_FLAGS, "deny", 0),
        "allow", (RETURN, ALLOW, 0, 0),
        "deny", (RETURN, deny, 0, 0),
        "enosys", (RETURN, enosys, 0, 0),
        "kill", (RETURN, KILL_PROCESS, 0, 0),
    ]
    return assemble(program)
