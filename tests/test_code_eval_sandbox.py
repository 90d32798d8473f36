"""The Code evaluation's sandbox against hostile programs in Python, JavaScript and C++.

Each program is run as the evaluation runs it; each must be contained (files outside intact,
no connection made, no process left, stopped at its time limit, memory capped) and judged as
bigcode-evaluation-harness judges it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from testkit.code_fixtures import rendered_code_project

MEMORY_LIMIT_MB = 1000  # small, so that the memory hogs reach it fast


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


def assert_contained(verdicts, cases, victims, listener, marker, sandbox):
    """Verdicts as expected, the files intact, no connection, no process of theirs left."""
    for name, _, expected in cases:
        assert verdicts[name].passed is expected, (name, verdicts[name])
    assert victims["delete_me"].read_text() == "intact"
    assert victims["overwrite_me"].read_text() == "intact"
    assert not connected(listener)
    for trace in (marker, str(sandbox.base), "program.py", "program.js"):
        assert processes_mentioning(trace) == [], trace
    assert verdicts["loop forever"].status == "timed out"
    assert verdicts["memory far past the cap"].status != "timed out"  # stopped by the cap, not the clock


def test_hostile_python(code, sandbox, victims, listener):
    marker = f"marker-{uuid.uuid4().hex}"
    port = listener.getsockname()[1]
    delete_me, overwrite_me = str(victims["delete_me"]), str(victims["overwrite_me"])
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
    assert verdicts["sys.exit(0) before the asserts"].status == "failed: 0"
    assert elapsed < 3 + 1 + 10  # the harness's 3 s, its kill one second later, and a busy machine


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
    assert elapsed < 5 + 10


CPP_INCLUDES = "".join(
    f"#include <{header}>\n" for header in ("bits/stdc++.h", "unistd.h", "sys/socket.h", "netinet/in.h")
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
    }
    cases = [
        ("right", right_main, True),
        ("wrong", right_main.replace("2 * x", "x"), False),
        ("compile error", "int main() { return }\n", False),
        *[(name, f"static int harm = {harmful};\n{right_main}", True) for name, harmful in harm.items()],
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
    assert elapsed < 15 + 15 + 15  # g++ and the program, 15 s each, and a busy machine


def test_each_program_gets_a_fresh_folder(code, sandbox):
    program = "import os\nassert os.listdir('.') == ['program.py']\nopen('left_behind', 'w').write('x')\n"
    verdicts = code.execution.execute([[program, program], [program]], "python", sandbox, 2, "fresh")
    assert [[verdict.passed for verdict in problem] for problem in verdicts] == [[True, True], [True]]


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
    for tool in ("prlimit", "setpriv", "sh"):
        (tools / tool).symlink_to(shutil.which(tool))
    if fake_bwrap is not None:
        (tools / "bwrap").write_text(f"#!/bin/sh\n{fake_bwrap}\n")
        (tools / "bwrap").chmod(0o755)
    monkeypatch.setenv("PATH", str(tools))
    with pytest.raises(code.sandbox.CannotExecute) as error:
        code.execution.open_sandbox(["python"], 4000, 1, False)
    assert message in str(error.value) and "--unsafe-no-sandbox" in str(error.value)
    assert "\n" not in str(error.value)


def test_folders_only_root_may_enter_are_remounted_empty_with_the_needed_ones_inside(code):
    hidden = Path(tempfile.mkdtemp())  # mode 0700, in a /tmp anyone may enter
    try:
        needed = hidden / "tools" / "python"
        needed.mkdir(parents=True)
        assert code.sandbox.remount_hidden([needed, Path("/usr")]) == [
            "--tmpfs", str(hidden),
            "--perms", "0755", "--dir", str(hidden / "tools"),
            "--ro-bind", str(needed), str(needed),
        ]
    finally:
        shutil.rmtree(hidden)


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/python3").exists() or not shutil.which("bwrap"),
                    reason="needs root (to become another user) and a system python3")
def test_unprivileged_users_get_the_same_sandbox_through_a_user_namespace(code):
    """The path a laptop user takes: bubblewrap unprivileged, no setpriv, limits per sandbox."""
    marker = f"marker-{uuid.uuid4().hex}"
    folder = Path(tempfile.mkdtemp(prefix="unprivileged-"))
    try:
        folder.chmod(0o755)
        shutil.copy(code.sandbox.__file__, folder / "sandbox.py")
        victim = folder / "victim"
        victim.write_text("intact")
        victim.chmod(0o666)
        (folder / "check.py").write_text(textwrap.dedent(f"""\
            import sandbox
            with sandbox.Sandbox(512_000_000, [], 1) as box, box.workspace() as workspace:
                result = workspace.run(["/bin/sh", "-c",
                    "echo owned > {victim}; echo wrote=$?; i=0; while [ $i -lt 600 ]; "
                    "do sh -c 'sleep 30' {marker} & i=$((i+1)); done; echo forked=$i"], 20)
                print(result.exit_code, result.output)
            """))
        process = subprocess.run(["/usr/bin/python3", str(folder / "check.py")], cwd=folder, user=65534,
                                 group=65534, extra_groups=[], capture_output=True, text=True, timeout=60)
        assert "Read-only file system" in process.stdout and "wrote=0" not in process.stdout, process
        assert "forked=" not in process.stdout and "Cannot fork" in process.stdout, process  # process cap
        assert victim.read_text() == "intact"
        assert processes_mentioning(marker) == []
    finally:
        shutil.rmtree(folder)
