"""The Code evaluation's sandbox against hostile programs in Python, JavaScript and C++.

Each program is run as the evaluation runs it; each must be contained (files outside intact,
no connection made, no process left, nothing of the host seen, stopped at its time limit,
memory capped as a whole) and judged as bigcode-evaluation-harness judges it.
"""

from __future__ import annotations

import errno
import json
import os
import platform
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from testkit.code_fixtures import rendered_code_project

MEMORY_LIMIT_MB = 1000  # small, so that the memory hogs reach it fast
HOST_LOSS_LIMIT = 1.6e9  # what a program capped at 1,000 MB may cost the host, memory and disk together
NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (user ids and cgroups of its own)")


@pytest.fixture(scope="module")
def code(tmp_path_factory):
    with rendered_code_project(tmp_path_factory.mktemp("code-project")) as (_, code_package):
        yield code_package


@pytest.fixture(scope="module")
def sandbox(code):
    with code.execution.open_sandbox(["python", "javascript", "cpp"], MEMORY_LIMIT_MB, 10, False) as box:
        yield box


@pytest.fixture
def victims():
    """Files that anyone could delete or overwrite, were it not for the sandbox."""
    folder = Path(tempfile.mkdtemp(prefix="victims-"))
    folder.chmod(0o777)
    files = {}
    for name in ("delete_me", "overwrite_me"):
        files[name] = folder / name
        files[name].write_text("intact")
        files[name].chmod(0o666)
    yield files
    shutil.rmtree(folder)


@pytest.fixture
def listener():
    """A TCP port on 127.0.0.1 that records whether anything connected."""
    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)
    yield server
    server.close()


@pytest.fixture
def host_sockets():
    """Unix sockets of the host (a file in /tmp and an abstract one), as a docker or D-Bus socket."""
    folder = Path(tempfile.mkdtemp(prefix="host-socket-"))
    folder.chmod(0o755)
    servers = []
    for address in (str(folder / "daemon.sock"), f"\0flowertune-test-{uuid.uuid4().hex}"):
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(address)
        if not address.startswith("\0"):
            os.chmod(address, 0o777)
        server.listen()
        server.setblocking(False)
        servers.append((address, server))
    yield servers
    for _, server in servers:
        server.close()
    shutil.rmtree(folder)


@pytest.fixture
def fake_home():
    """A home folder with secrets anyone may read, as a careless machine has them."""
    home = Path(tempfile.mkdtemp(prefix="home-"))
    home.chmod(0o755)
    secrets = [home / ".cache" / "huggingface" / "token", home / ".ssh" / "id_ed25519"]
    for secret in secrets:
        secret.parent.mkdir(parents=True)
        secret.write_text("hf_secret_value")
        secret.chmod(0o644)
        secret.parent.chmod(0o755)
        secret.parent.parent.chmod(0o755)
    yield home, secrets
    shutil.rmtree(home)


def connected(server: socket.socket) -> bool:
    try:
        server.accept()[0].close()
        return True
    except BlockingIOError:
        return False


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes (other than this one) that contain `text`."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            raw = Path(f"/proc/{entry}/cmdline").read_bytes()
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
        command = raw.replace(b"\0", b" ").decode("utf-8", "replace")
        if text in command and int(entry) != os.getpid():
            found.append(command)
    return found


def run_batch(code, sandbox, language, cases):
    """Judge every case's program at once; the verdicts by case name and the time it all took."""
    started = time.monotonic()
    verdicts = code.execution.execute([[program] for _, program, _ in cases], language, sandbox, 10, language)
    elapsed = time.monotonic() - started
    return {name: problem[0] for (name, _, _), problem in zip(cases, verdicts, strict=True)}, elapsed


def processes_in_cgroups(sandbox) -> list[str]:
    """The processes left in the sandbox's cgroups (its programs' groups are inside them)."""
    return [pid for parent in sandbox.limits.parents.values() for procs in parent.rglob("cgroup.procs")
            for pid in procs.read_text().split()]


def assert_contained(verdicts, cases, victims, listener, marker, sandbox):
    """Verdicts as expected, the files intact, no connection, no process of theirs left."""
    for name, _, expected in cases:
        assert verdicts[name].passed is expected, (name, verdicts[name])
    assert victims["delete_me"].read_text() == "intact"
    assert victims["overwrite_me"].read_text() == "intact"
    assert not connected(listener)
    assert processes_mentioning(marker) == []
    assert processes_in_cgroups(sandbox) == []
    assert not Path("/tmp", marker).exists()  # what programs write in /tmp stays theirs
    assert verdicts["loop forever"].status == "timed out"
    assert verdicts["memory far past the cap"].status != "timed out"  # stopped by the cap, not the clock


def test_hostile_python(code, sandbox, victims, listener, host_sockets, fake_home):
    marker = f"marker-{uuid.uuid4().hex}"
    port = listener.getsockname()[1]
    delete_me, overwrite_me = str(victims["delete_me"]), str(victims["overwrite_me"])
    socket_addresses = [address for address, _ in host_sockets]
    right = "def double(x):\n    return 2 * x\nassert double(2) == 4\n"
    cases = [
        ("right", right, True),
        ("wrong", right.replace("2 * x", "x"), False),
        # The harness's guard makes os.remove None: deleting fails there too.
        ("delete outside", f"import os\nos.remove({delete_me!r})\n{right}", False),
        ("overwrite outside, error caught",
         f"try:\n    open({overwrite_me!r}, 'w').write('owned')\nexcept OSError:\n    pass\n{right}", True),
        ("overwrite outside", f"open({overwrite_me!r}, 'w').write('owned')\n{right}", False),
        ("connect, error caught",
         f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
         f"except OSError:\n    pass\n{right}", True),
        ("connect to the host's unix sockets, errors caught",
         f"import socket\nfor address in {socket_addresses!r}:\n"
         "    try:\n        socket.socket(socket.AF_UNIX).connect(address)\n"
         "    except OSError:\n        pass\n"
         f"{right}", True),
        ("writes /tmp, as it may in the harness",
         f"open('/tmp/{marker}', 'w').write('x')\nassert open('/tmp/{marker}').read() == 'x'\n{right}", True),
        ("a 1,500-deep tree it cannot delete itself",
         "import os, posix\nfolder = os.open('.', os.O_RDONLY)\nfor _ in range(1500):\n"
         "    os.mkdir('d', dir_fd=folder)\n    inner = os.open('d', os.O_RDONLY, dir_fd=folder)\n"
         "    os.close(folder)\n    folder = inner\n"
         "posix.chmod('d/d', 0o500)\nposix.chmod('d', 0)\n" + right, True),
        ("sees no secrets of the host's homes",
         f"import os\nassert not any(os.path.exists(p) for p in {[str(s) for s in fake_home[1]]!r})\n"
         "assert not os.path.exists(os.path.expanduser('~/.cache/huggingface/token'))\n" + right, True),
        ("cannot reach the sandbox's first process (the reporter)",
         "import os\nfor action in (lambda: os.listdir('/proc/1/fd'), lambda: open('/proc/1/mem', 'rb'),\n"
         "               lambda: open('/proc/1/environ', 'rb').read()):\n"
         "    try:\n        action()\n    except PermissionError:\n        continue\n"
         "    raise AssertionError('reached it')\n" + right, True),
        ("has no capabilities and cannot gain any",
         "status = open('/proc/self/status').read()\n"
         "assert 'CapEff:\\t0000000000000000' in status and 'NoNewPrivs:\\t1' in status\n" + right, True),
        ("detached process",
         f"import os\nos.posix_spawn('/bin/sh', ['sh', '-c', 'sleep 60', '{marker}'], {{}}, setsid=True)\n"
         f"{right}", True),
        ("fork bomb", "import posix\nwhile True:\n    posix.fork()\n", False),
        ("loop forever", "while True:\n    pass\n", False),
        ("memory far past the cap",
         "chunks = []\nwhile True:\n    chunks.append(bytearray(100 * 2**20))\n", False),
        ("sys.exit(0) before the asserts", "import sys\nsys.exit(0)\nassert False\n", False),
        ("os._exit(0) before the asserts", "import os\nos._exit(0)\nassert False\n", False),
        ("__main__ block, skipped as in the harness",
         f"{right}if __name__ == '__main__':\n    raise SystemExit(1)\n", True),
        ("runs as another user, in a fresh folder",
         "import os\nassert os.listdir('.') == ['program.py']\n"
         f"assert os.getuid() != 0 or {os.geteuid()} != 0\nopen('scratch', 'w').write('mine')\n", True),
    ]
    verdicts, elapsed = run_batch(code, sandbox, "python", cases)
    assert_contained(verdicts, cases, victims, listener, marker, sandbox)
    assert not any(connected(server) for _, server in host_sockets)
    assert verdicts["sys.exit(0) before the asserts"].status == "failed: 0"
    assert elapsed < 2 * (3 + 1) + 15  # two rounds of 10: the harness's 3 s, its kill 1 s later, slack


JS_SPAWN = (
    "require('child_process')"
    ".spawn('sh', ['-c', 'sleep 60', '{marker}'], {{detached: true, stdio: '{stdio}'}})"
)


def test_hostile_javascript(code, sandbox, victims, listener):
    marker = f"marker-{uuid.uuid4().hex}"
    port = listener.getsockname()[1]
    delete_me, overwrite_me = str(victims["delete_me"]), str(victims["overwrite_me"])
    right = textwrap.dedent("""\
        const assert = require('node:assert');
        function double(x) { return 2 * x; }
        assert.equal(double(2), 4);
        """)
    cases = [
        ("right", right, True),
        ("wrong", right.replace("2 * x", "x"), False),
        ("delete and overwrite outside, errors caught",
         f"const fs = require('fs');\ntry {{ fs.unlinkSync({delete_me!r}); }} catch (e) {{}}\n"
         f"try {{ fs.writeFileSync({overwrite_me!r}, 'owned'); }} catch (e) {{}}\n{right}", True),
        ("delete outside", f"require('fs').unlinkSync({delete_me!r});\n{right}", False),
        ("connect, error handled",
         f"const s = require('net').connect({port}, '127.0.0.1');\ns.on('error', () => {{}});\n{right}",
         True),
        # As under the harness's subprocess.run: a detached child with its own output passes,
        # one that keeps node's output open makes the run time out.
        ("detached process", JS_SPAWN.format(marker=marker, stdio="ignore") + ".unref();\n" + right, True),
        ("detached process holding the output",
         JS_SPAWN.format(marker=marker, stdio="inherit") + ".unref();\n" + right, False),
        ("forge a pass through the reporter's descriptors, then fail",
         "const fs = require('fs');\nfor (const fd of [1, 2, 3, 4, 5]) for (const pid of [1, 2]) {\n"
         "  try { fs.writeFileSync(`/proc/${pid}/fd/${fd}`, 'exit 0\\n'); } catch (e) {}\n}\n"
         "process.exit(1);\n", False),
        ("prints 1 MB (read whole, as subprocess.run reads it)",
         f"process.stdout.write('x'.repeat(2 ** 20));\n{right}", True),
        ("fork many", "const cp = require('child_process');\nfor (;;) cp.spawn('sleep', ['60']);\n", False),
        ("loop forever", "while (true) {}\n", False),
        ("memory far past the cap",
         "const chunks = [];\nfor (;;) chunks.push(Buffer.alloc(100 * 2 ** 20, 1));\n", False),
        ("a normal program under the cap",
         "const a = [];\nfor (let i = 0; i < 1e6; i++) a.push({i});\n"
         f"require('assert').equal(a.length, 1e6);\n{right}", True),
        ("process.exit(0) before the asserts: exit status 0 passes",
         f"process.exit(0);\n{right}assert.equal(1, 2);\n", True),
    ]
    verdicts, elapsed = run_batch(code, sandbox, "javascript", cases)
    assert_contained(verdicts, cases, victims, listener, marker, sandbox)
    assert verdicts["detached process holding the output"].status == "timed out"
    assert elapsed < 2 * 5 + 15


CPP_INCLUDES = "".join(  # the headers needed, not bits/stdc++.h: a fifth of the compile time
    f"#include <{header}>\n" for header in ("cassert", "cstdlib", "cstring", "fstream", "iostream", "string",
                                            "vector", "unistd.h", "sys/socket.h", "netinet/in.h")
)


def test_hostile_cpp(code, sandbox, victims, listener):
    marker = f"marker-{uuid.uuid4().hex}"
    port = listener.getsockname()[1]
    right_main = "long twice(long x) { return 2 * x; }\nint main() { assert(twice(2) == 4); }\n"
    harm = {
        "delete and overwrite outside": f"""(std::remove("{victims['delete_me']}"),
            std::ofstream("{victims['overwrite_me']}") << "owned", 0)""",
        "connect": f"""[] {{
            int s = socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in a{{}}; a.sin_family = AF_INET; a.sin_port = htons({port});
            a.sin_addr.s_addr = htonl(0x7f000001);
            return connect(s, (sockaddr*)&a, sizeof a);
        }}()""",
        "detached process": f"""std::system("setsid sh -c 'sleep 60' {marker} &")""",
        # The harness drains 1 KiB of each stream every 0.1 s: 100 KB fits in time, 1 MB does not.
        "prints 100 KB, more than its pipe holds": """(std::cout << std::string(100000, 'x'), 0)""",
    }
    cases = [
        ("right", right_main, True),
        ("wrong", right_main.replace("2 * x", "x"), False),
        ("compile error", "int main() { return }\n", False),
        *[(name, f"static int harm = {harmful};\n{right_main}", True) for name, harmful in harm.items()],
        ("prints 1 MB: blocked on its pipe until the limit, as in the harness",
         "int main() { std::cout << std::string(1 << 20, 'x'); }\n", False),
        ("fork bomb", "int main() { for (;;) fork(); }\n", False),
        ("loop forever", "int main() { volatile long n = 0; for (;;) n++; }\n", False),
        ("memory far past the cap",
         "int main() { std::vector<char*> v; for (;;) { char* p = new char[100 << 20]; "
         "memset(p, 1, 100 << 20); v.push_back(p); } }\n", False),
        ("exit(0) before the asserts: exit status 0 passes",
         "static int early = (std::exit(0), 0);\nint main() { assert(false); }\n", True),
    ]
    cases = [(name, CPP_INCLUDES + program, expected) for name, program, expected in cases]
    verdicts, elapsed = run_batch(code, sandbox, "cpp", cases)
    assert_contained(verdicts, cases, victims, listener, marker, sandbox)
    assert verdicts["compile error"].status.startswith("compile error")
    blocked = "prints 1 MB: blocked on its pipe until the limit, as in the harness"
    assert verdicts[blocked].status == "timed out"
    assert elapsed < 15 + 15 + 20  # g++ and the program, 15 s each, and a busy machine


def test_each_program_gets_a_fresh_folder(code, sandbox):
    program = "import os\nassert os.listdir('.') == ['program.py']\nopen('left_behind', 'w').write('x')\n"
    verdicts = code.execution.execute([[program, program], [program]], "python", sandbox, 2, "fresh")
    assert [[verdict.passed for verdict in problem] for problem in verdicts] == [[True, True], [True]]


def run_script(code, sandbox, script: str, time_limit: float = 20):
    """A Python script of the test's own (not a harness program) run in the sandbox: its result."""
    step = code.sandbox.Step((sys.executable, "-I", "-c", script), time_limit)
    [result] = sandbox.run({}, [step]).results
    return result


def test_a_program_sees_only_its_tools_and_its_own_folders(code, sandbox, host_sockets, fake_home):
    view = code.sandbox.view
    home = os.path.expanduser("~")
    host_paths = ["/home", "/run", "/sys", "/var", "/mnt", "/opt", "/srv", str(fake_home[0]),
                  *(address for address, _ in host_sockets if "\0" not in address)]
    script = textwrap.dedent(f"""\
        import json, os
        print(json.dumps({{
            "top": sorted(os.listdir("/")), "etc": sorted(os.listdir("/etc")),
            "host paths seen": [p for p in {host_paths!r} if os.path.lexists(p)],
            "home": sorted(os.listdir({home!r})) if os.path.isdir({home!r}) else [],
            "writable": [p for p in ("/", "/usr", "/etc", "{view.WORKSPACE}", "/tmp", "/dev")
                         if os.access(p, os.W_OK)],
            "workspace": sorted(os.listdir("{view.WORKSPACE}")), "tmp": sorted(os.listdir("/tmp")),
            "processes": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        }}))
        """)
    result = run_script(code, sandbox, script)
    seen = json.loads(result.stdout)
    tools = view.tool_folders([sys.executable])
    allowed_top = {*view.TOP_LEVEL_LINKS, "usr", "etc", "proc", "dev", "tmp", "workspace",
                   *(folder.parts[1] for folder in tools)}
    assert set(seen["top"]) <= allowed_top, seen["top"]
    # a home holding a tool (a Python under ~/.pyenv, say) shows only the way to it
    assert set(seen["home"]) <= {folder.relative_to(home).parts[0] for folder in tools
                                 if Path(home) in folder.parents}, seen["home"]
    assert set(seen["etc"]) <= set(view.ETC_ENTRIES)
    assert seen["host paths seen"] == []
    assert seen["writable"] == [view.WORKSPACE, "/tmp"]
    assert seen["workspace"] == seen["tmp"] == []
    assert seen["processes"] == [1, 2]  # the supervisor and this script: nothing of the host


def test_denied_calls_fail_with_eperm_inside_and_no_user_namespace_can_be_made(code, sandbox):
    numbers = code.sandbox.seccomp.ARCHITECTURES[platform.machine()].numbers
    script = textwrap.dedent(f"""\
        import ctypes, json, subprocess, threading
        libc = ctypes.CDLL(None, use_errno=True)
        numbers = {numbers!r}
        def call(name, *args):
            ctypes.set_errno(0)
            result = libc.syscall(numbers[name], *[ctypes.c_long(a) for a in args])
            return 0 if result >= 0 else ctypes.get_errno()
        checks = {{
            **{{f"socket family {{f}}": call("socket", f, 2, 0) for f in (16, 17, 40, 38, 31, 42)}},
            "io_uring_setup": call("io_uring_setup", 1, 0), "keyctl": call("keyctl", 0, 0),
            "add_key": call("add_key", 0, 0, 0, 0, 0), "request_key": call("request_key", 0, 0, 0, 0),
            "unshare new user": call("unshare", 0x10000000), "unshare new mount": call("unshare", 0x20000),
            "clone new user": call("clone", 0x10000000 | 17, 0, 0, 0, 0), "setns": call("setns", -1, 0),
            "mount": call("mount", 0, 0, 0, 0, 0), "ptrace": call("ptrace", 0, 0, 0, 0),
            "bpf": call("bpf", 0, 0, 0), "perf_event_open": call("perf_event_open", 0, 0, -1, -1, 0),
            "userfaultfd": call("userfaultfd", 0),
            "process_vm_readv": call("process_vm_readv", 1, 0, 0, 0, 0, 0),
            "clone3": call("clone3", 0, 0),
        }}
        thread = threading.Thread(target=print)
        thread.start()
        thread.join()
        allowed = {{
            "socket inet": call("socket", 2, 1, 0), "socket inet6": call("socket", 10, 1, 0),
            "socket unix": call("socket", 1, 1, 0), "unshare without namespaces": call("unshare", 0),
            "a child process": subprocess.run(["/bin/true"]).returncode,
        }}
        nested = subprocess.run(["unshare", "-Urm", "sh", "-c", "mount -t tmpfs none /tmp && echo mounted"],
                                capture_output=True, text=True)
        nested = [nested.returncode, nested.stdout + nested.stderr]
        print(json.dumps({{"denied": checks, "allowed": allowed, "nested": nested}}))
        """)
    seen = json.loads(run_script(code, sandbox, script).stdout)
    denied = seen["denied"]
    assert denied.pop("clone3") == errno.ENOSYS  # so that the C library falls back to clone
    assert denied == {name: errno.EPERM for name in denied}
    assert seen["allowed"] == {name: 0 for name in seen["allowed"]}
    code_, text = seen["nested"]
    assert code_ != 0 and "mounted" not in text and "Operation not permitted" in text


def seccomp_decision(program: bytes, arch: int, number: int, first_argument: int = 0) -> int:
    """What a classic BPF seccomp program returns for one call (an interpreter of the few
    instructions the filter uses)."""
    data = struct.pack("=iIQ6Q", number, arch, 0, first_argument, 0, 0, 0, 0, 0)
    records = [struct.unpack_from("=HBBI", program, offset) for offset in range(0, len(program), 8)]
    position, accumulator = 0, 0
    while True:
        code, if_true, if_false, k = records[position]
        if code == 0x06:
            return k
        if code == 0x20:
            accumulator, position = struct.unpack_from("=I", data, k)[0], position + 1
            continue
        taken = {0x15: accumulator == k, 0x35: accumulator >= k, 0x45: bool(accumulator & k)}[code]
        position += 1 + (if_true if taken else if_false)


def header_numbers(header: Path) -> dict[str, int]:
    pattern = re.compile(r"#define __NR(?:3264)?_(\w+)\s+(\d+)\b")
    return {name: int(number) for name, number in pattern.findall(header.read_text())}


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_the_seccomp_filter_decides_as_intended_on_each_architecture(code, machine):
    seccomp = code.sandbox.seccomp
    arch = seccomp.ARCHITECTURES[machine]
    headers = {"x86_64": Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
               "aarch64": Path("/usr/include/asm-generic/unistd.h")}
    if headers[machine].exists():  # the table's numbers are the kernel's
        known = header_numbers(headers[machine])
        assert {name: known[name] for name in arch.numbers} == arch.numbers
    program = seccomp.filter_program(machine)
    numbers = arch.numbers

    def decide(name, argument=0, audit_arch=arch.audit_arch):
        number = numbers[name] if isinstance(name, str) else name
        return seccomp_decision(program, audit_arch, number, argument)

    eperm, allow = seccomp.ERRNO | errno.EPERM, seccomp.ALLOW
    for family, expected in [(1, allow), (2, allow), (10, allow), (16, eperm), (17, eperm), (40, eperm)]:
        assert decide("socket", family) == expected, family
    assert decide("clone", 0x10000000 | 17) == eperm and decide("clone", 0x01200011) == allow
    assert decide("unshare", 0x20000) == eperm and decide("unshare", 0x400) == allow
    assert decide("clone3") == seccomp.ERRNO | errno.ENOSYS
    assert all(decide(name) == eperm for name in seccomp.DENIED_CALLS if name in numbers)
    assert decide(0) == allow and decide(63) == allow  # read/io_setup on one, read/uname on the other
    assert decide(0, audit_arch=0x40000003) == seccomp.KILL_PROCESS  # another architecture's calls
    if arch.has_x32:
        assert decide(0x40000000) == seccomp.KILL_PROCESS


def host_free() -> int:
    """The host's free memory and disk (of / and /tmp, once if they are one file system), in bytes."""
    disks = {os.stat(path).st_dev: shutil.disk_usage(path).free for path in ("/", "/tmp")}
    return psutil.virtual_memory().available + sum(disks.values())


def host_loss_sampler(stop: threading.Event, samples: list):
    while not stop.is_set():
        samples.append(host_free())
        time.sleep(0.02)


def peak_memory(box) -> int:
    """The most memory the evaluation's programs held at once (the kernel's own count)."""
    for folder, name in ((box.limits.parents.get("unified"), "memory.peak"),
                         (box.limits.parents.get("memory"), "memory.max_usage_in_bytes")):
        if folder is not None and (folder / name).exists():
            return int((folder / name).read_text())
    raise AssertionError("no peak memory count")


def test_a_program_is_capped_as_a_whole_however_it_spreads_its_memory(code):
    right = "def double(x):\n    return 2 * x\nassert double(2) == 4\n"
    hogs = {
        "3 memfds of 800 MB": "import os\nfor _ in range(3):\n"
                              "    os.posix_fallocate(os.memfd_create('hog'), 0, 800 * 2**20)\n",
        "3 children of 700 MB": "import os, posix, time\nchildren = []\nfor _ in range(3):\n"
                                "    children.append(posix.fork())\n    if children[-1] == 0:\n"
                                "        hog = b'x' * (700 * 2**20)\n        time.sleep(2)\n"
                                "        posix._exit(0)\n"
                                "assert all(os.waitpid(child, 0)[1] == 0 for child in children)\n",
        "large files in its folder and /tmp": "for folder in ('.', '/tmp'):\n    for i in range(3):\n"
                                              "        with open(f'{folder}/big{i}', 'wb') as f:\n"
                                              "            f.write(b'x' * (400 * 2**20))\n",
        "a tmpfs in a nested namespace": "import os\npid = os.posix_spawn('/usr/bin/unshare', ['unshare', "
                                         "'-Urm', 'sh', '-c', 'mount -t tmpfs none /tmp && head -c 1500M "
                                         "/dev/zero > /tmp/f'], {})\nassert os.waitpid(pid, 0)[1] == 0\n",
    }
    samples: list = []
    stop = threading.Event()
    with code.sandbox.Sandbox(MEMORY_LIMIT_MB * 1_000_000, [], 2) as box:
        before = host_free()
        sampler = threading.Thread(target=host_loss_sampler, args=(stop, samples))
        sampler.start()
        try:  # one at a time: what one program can take from the host (other load here is noise)
            programs = [[hog] for hog in hogs.values()] + [[right]]
            verdicts = code.execution.execute(programs, "python", box, 1, "hogs")
        finally:
            stop.set()
            sampler.join()
        # two at once, as on 2 CPUs: the evaluation's own cap holds them together (the kernel's count)
        together = code.execution.execute([[hogs["3 memfds of 800 MB"]]] * 2 + [[right]], "python", box, 2,
                                          "hogs at once")
        peak = peak_memory(box)
    assert [problem[0].passed for problem in verdicts] == [False] * len(hogs) + [True]
    assert before - min(samples) < HOST_LOSS_LIMIT
    assert [problem[0].passed for problem in together] == [False, False, True]
    assert peak <= (MEMORY_LIMIT_MB * 1_000_000 + code.sandbox.limits.OTHER_PROGRAM_SHARE) * 1.02


def test_the_number_of_files_is_bounded_by_the_memory_cap(code):
    """Every file costs kernel memory charged to the program: a small cap holds a few tens of
    thousands of empty files, however many the program tries to make."""
    script = ("import os\nfor count in range(10**7):\n"
              "    os.close(os.open(f'/tmp/{count}', os.O_CREAT | os.O_WRONLY))\n"
              "    if count % 5000 == 0:\n        print(count, flush=True)\n")
    with code.sandbox.Sandbox(64 * 2**20, [], 1) as box:
        [result] = box.run({}, [code.sandbox.Step((sys.executable, "-I", "-S", "-c", script), 60)]).results
    made = [int(line) for line in result.stdout.split()]
    assert result.exit_code != 0 and 5000 <= made[-1] < 200_000, result


@as_root
def test_two_evaluations_at_once_get_user_ids_of_their_own_and_one_s_forks_leave_the_other_be(code):
    bomb = "import posix\nwhile True:\n    try:\n        posix.fork()\n    except OSError:\n        pass\n"
    right = "def double(x):\n    return 2 * x\nassert double(2) == 4\n"
    with code.sandbox.Sandbox(MEMORY_LIMIT_MB * 1_000_000, [], 4) as forks, \
            code.sandbox.Sandbox(MEMORY_LIMIT_MB * 1_000_000, [], 4) as other:
        assert not set(forks.user_id_block.user_ids) & set(other.user_id_block.user_ids)
        bombs: dict = {}
        thread = threading.Thread(target=lambda: bombs.update(
            verdicts=code.execution.execute([[bomb]] * 4, "python", forks, 4, "forks")))
        thread.start()
        time.sleep(1)  # the forks are at their caps
        verdicts = code.execution.execute([[right]] * 8, "python", other, 4, "right")
        thread.join()
    assert [problem[0].status for problem in verdicts] == ["passed"] * 8
    assert [problem[0].passed for problem in bombs["verdicts"]] == [False] * 4


@pytest.mark.parametrize(
    ("fake_bwrap", "message"),
    [
        (None, "bubblewrap (bwrap) is not installed"),
        ("echo 'bwrap: Creating new namespace failed: Operation not permitted' >&2; exit 1",
         "bubblewrap cannot create a sandbox here (bwrap: Creating new namespace failed"),
    ],
)
def test_refuses_to_run_unsandboxed_naming_what_is_missing_and_the_flag(code, tmp_path, monkeypatch,
                                                                        fake_bwrap, message):
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "sh").symlink_to(shutil.which("sh"))
    if fake_bwrap is not None:
        (tools / "bwrap").write_text(f"#!/bin/sh\n{fake_bwrap}\n")
        (tools / "bwrap").chmod(0o755)
    monkeypatch.setenv("PATH", str(tools))
    with pytest.raises(code.sandbox.CannotExecute) as error:
        code.execution.open_sandbox(["python"], 4000, 1, False)
    assert message in str(error.value) and "--unsafe-no-sandbox" in str(error.value)
    assert "\n" not in str(error.value)


def test_without_a_cgroup_to_cap_programs_in_it_stops_naming_what_is_missing(code, monkeypatch):
    monkeypatch.setattr(code.sandbox.limits, "cgroup_mounts", lambda: [])
    with pytest.raises(code.sandbox.CannotExecute) as error:
        code.sandbox.Sandbox(MEMORY_LIMIT_MB * 1_000_000, [], 1)
    text = str(error.value)
    assert "cannot be capped as a whole" in text and "no cgroup v1 memory or pids hierarchy" in text
    assert "Delegate=yes" in text and "--unsafe-no-sandbox" in text and "\n" not in text


@pytest.mark.parametrize("delegated", [False, True], ids=["as root", "delegated to a user"])
def test_cgroup_v2_groups_are_made_where_the_rules_allow(code, tmp_path, monkeypatch, delegated):
    """On a stand-in for a cgroup v2 hierarchy (this machine's own may be v1): the evaluation's
    group at the top under root, or beside the evaluation in a cgroup delegated to it alone."""
    limits = code.sandbox.limits
    top = tmp_path / "cgroup"
    (top / "user" / "scope").mkdir(parents=True)
    (top / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (top / "user" / "scope" / "cgroup.procs").write_text(f"{os.getpid()}\n")
    monkeypatch.setattr(limits, "cgroup_mounts", lambda: [limits.Mount(top, "/", frozenset(), True)])
    monkeypatch.setattr(limits, "own_cgroups", lambda: {limits.UNIFIED: "/user/scope"})
    if delegated:
        real_access = os.access
        monkeypatch.setattr(limits.os, "access",
                            lambda path, mode: Path(path) != top and real_access(path, mode))
    program_limits = limits.ProgramLimits("evaluation-x", 123_000_000, 2)
    group = program_limits.parents[limits.UNIFIED]
    assert group == (top / "user" / "scope" / "evaluation-x" if delegated else top / "evaluation-x")
    assert (group / "memory.max").read_text() == str(123_000_000 + limits.OTHER_PROGRAM_SHARE)
    if delegated:  # the evaluation moved itself out of the way of its programs' controllers
        assert (top / "user" / "scope" / "evaluation" / "cgroup.procs").read_text() == str(os.getpid())
    with program_limits.program() as procs:
        program = procs[0].parent
        assert program.parent == group
        assert (program / "memory.max").read_text() == "123000000"
        assert (program / "pids.max").read_text() == str(limits.MAX_PROCESSES)


@pytest.mark.skipif(os.geteuid() == 0 and not Path("/usr/bin/python3").exists(),
                    reason="needs a system python3")
def test_a_deep_tree_its_program_made_unwritable_is_deleted_without_recursion(code):
    """Cleanup of an unsandboxed program's folder, by a user other than root (whose rights would
    hide a permission mistake)."""
    folder = Path(tempfile.mkdtemp(prefix="cleanup-"))
    folder.chmod(0o777)
    shutil.copy(code.sandbox.cleanup.__file__, folder / "cleanup.py")
    script = textwrap.dedent(f"""\
        import os, pathlib, sys
        sys.path.insert(0, {str(folder)!r})
        import cleanup
        root = pathlib.Path({str(folder)!r}) / "workspace"
        root.mkdir()
        path = root
        for _ in range(1500):
            path = path / "d"
            os.mkdir(path)
        (path / "f").write_text("x")
        os.chmod(path, 0o500)
        os.chmod(root / "d", 0)
        cleanup.remove_tree(root)
        print(root.exists())
        """)
    python, user = sys.executable, {}
    if os.geteuid() == 0:
        python, user = "/usr/bin/python3", {"user": NOBODY, "group": NOBODY, "extra_groups": []}
    try:
        process = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=60,
                                 cwd=folder, **user)
    finally:
        shutil.rmtree(folder)
    assert process.stdout.strip() == "False", process.stderr


@contextmanager
def delegated_cgroups(limits, user_id: int):
    """Cgroups delegated to `user_id`, as systemd delegates them; their `cgroup.procs` files."""
    name = f"test-delegated-{uuid.uuid4().hex[:8]}"
    mounts, own = limits.cgroup_mounts(), limits.own_cgroups()
    unified = [mount for mount in mounts if mount.unified
               and {"memory", "pids"} <= set((mount.point / "cgroup.controllers").read_text().split())]
    if unified:
        limits.enable_controllers(unified[0].point, required=False)
        groups = [unified[0].point / name]
    else:
        by_controller = {controller: mount for mount in mounts for controller in mount.controllers}
        groups = [by_controller[kind].folder(own.get(kind, "/")) / name for kind in ("memory", "pids")]
    try:
        for group in groups:
            group.mkdir()
            for path in (group, *(group / file for file in ("cgroup.procs", "cgroup.subtree_control",
                                                              "cgroup.threads", "tasks"))):
                if path.exists():
                    os.chown(path, user_id, user_id)
        yield [group / "cgroup.procs" for group in groups]
    finally:
        for group in groups:
            limits.remove_group(group)


@as_root
@pytest.mark.skipif(not Path("/usr/bin/python3").exists() or not shutil.which("bwrap"),
                    reason="needs a system python3 and bubblewrap")
def test_unprivileged_users_get_the_same_sandbox_through_a_user_namespace(code, fake_home):
    """The path a laptop user takes: bubblewrap unprivileged, in a cgroup delegated to the user."""
    marker = f"marker-{uuid.uuid4().hex}"
    home, secrets = fake_home
    folder = Path(tempfile.mkdtemp(prefix="unprivileged-"))
    try:
        folder.chmod(0o755)
        shutil.copytree(Path(code.sandbox.__file__).parent, folder / "sandbox")
        victim = folder / "victim"
        victim.write_text("intact")
        victim.chmod(0o666)
        shell = ("kill -INT 1; kill -KILL 1; "  # the reporter, under the same user id, ignores them
                 f"echo owned > {victim}; echo wrote=$?; cat {secrets[0]}; echo secret=$?; "
                 "ls /proc/1/fd; echo fds=$?; cat /proc/1/mem; echo mem=$?; "
                 "unshare -Ur true; echo userns=$?; i=0; "
                 f"while [ $i -lt 600 ]; do sh -c 'sleep 30' {marker} & i=$((i+1)); done; echo forked=$i")
        hog = ("import os\nfor _ in range(3):\n"
               "    os.posix_fallocate(os.memfd_create('hog'), 0, 300 * 2**20)\nprint('held')")
        (folder / "check.py").write_text(textwrap.dedent(f"""\
            import json
            from sandbox import Sandbox, Step
            with Sandbox(512_000_000, [], 1) as box:
                shell = box.run({{}}, [Step(("/bin/sh", "-c", {shell!r}), 20)]).results[0]
                hog = box.run({{}}, [Step(("/usr/bin/python3", "-c", {hog!r}), 20)]).results[0]
                print(json.dumps([box.description, shell.stdout + shell.stderr, hog.exit_code, hog.stdout]))
            """))
        limits = code.sandbox.limits
        with delegated_cgroups(limits, NOBODY) as procs:
            process = subprocess.run(
                ["/bin/sh", "-c", code.sandbox.bubblewrap.JOIN_CGROUPS, "sh", *map(str, procs), "--",
                 "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                 "/usr/bin/python3", str(folder / "check.py")],
                cwd=folder, env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
                capture_output=True, text=True, timeout=120,
            )
        assert process.returncode == 0, process.stderr
        description, shell_output, hog_exit, hog_output = json.loads(process.stdout.splitlines()[-1])
        assert "cgroup" in description and "seccomp" in description
        assert "wrote=2" in shell_output  # the victim's folder is not there at all
        assert "secret=0" not in shell_output and "hf_secret_value" not in shell_output
        assert "fds=0" not in shell_output and "mem=0" not in shell_output and "userns=0" not in shell_output
        assert "forked=" not in shell_output and "Cannot fork" in shell_output  # the process cap
        assert hog_exit != 0 and "held" not in hog_output  # memfds past the program's cap
        assert victim.read_text() == "intact"
        assert processes_mentioning(marker) == []
    finally:
        shutil.rmtree(folder)
