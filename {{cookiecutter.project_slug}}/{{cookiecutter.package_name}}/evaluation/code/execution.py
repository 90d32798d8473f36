"""Run generated programs in the sandbox, in parallel, and judge each as
bigcode-evaluation-harness does.

- Python (HumanEval, MBPP): the harness `exec`s the program in a child process under its
  reliability guard, with a 3 s timer and a kill one second later; it passes only if `exec`
  returns (`python_runner.py` does the same, inside the sandbox; the kill allows 5 s more for
  the interpreter to start and import what the harness's worker had imported before its timer).
- JavaScript (MultiPL-E): `subprocess.run(["node", file], capture_output=True, timeout=5)`;
  it passes on exit status 0 once node has exited and its output has closed, within 5 s (a
  detached child that keeps node's stdout open makes it time out).
- C++ (MultiPL-E): `g++ file -o binary -std=c++17`, then the binary, 15 s each, both under the
  harness's `safe_subprocess.run`, which reads at most 1 KiB of each output stream every 0.1 s:
  a program that prints more than its pipe holds blocks, and times out unless it ends first.
  It passes on exit status 0 of the binary's own process (what it leaves running does not count).
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from .sandbox import CannotExecute, Sandbox, Step, required_tool

PYTHON_TIME_LIMIT = 3.0  # the harness's timer for HumanEval and MBPP
PYTHON_KILL_DELAY = 1.0  # it kills the process this much later (a program that caught the timeout)
# The harness's worker has its modules imported before its timer starts; ours imports them first.
PYTHON_START_ALLOWANCE = 5.0
NODE_TIME_LIMIT = 5.0
CPP_TIME_LIMIT = 15.0  # for g++, and again for the program
INSTALL_NODE = "apt-get install nodejs"
INSTALL_GPP = "apt-get install g++"
PYTHON_RUNNER = Path(__file__).with_name("python_runner.py").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Verdict:
    passed: bool
    status: str  # "passed", "timed out", "failed: ...", "compile error: ..."


def judge_python(sandbox: Sandbox, program: str) -> Verdict:
    """Run a Python program as the harness does; its verdict comes after a one-time token."""
    token = secrets.token_hex(16)
    step = Step((sys.executable, "-I", "-c", PYTHON_RUNNER, str(PYTHON_TIME_LIMIT)),
                PYTHON_START_ALLOWANCE + PYTHON_TIME_LIMIT + PYTHON_KILL_DELAY, stdin=f"{token}\n")
    for result in sandbox.run({"program.py": program}, [step]).results:
        for line in result.stdout.splitlines():
            if line.startswith(f"{token} "):
                status = line[len(token) + 1 :]
                return Verdict(status == "passed", status)
    return Verdict(False, "timed out")  # the harness's word for a program that left no result


def exit_verdict(exit_code: int | None) -> Verdict:
    if exit_code is None:
        return Verdict(False, "timed out")
    if exit_code == 0:
        return Verdict(True, "passed")
    return Verdict(False, f"failed: exit status {exit_code}")


def judge_javascript(sandbox: Sandbox, program: str) -> Verdict:
    """Run a JavaScript program under node as MultiPL-E does."""
    node = required_tool("node", INSTALL_NODE)
    step = Step((node, "program.js"), NODE_TIME_LIMIT, wait_for_output=True)
    results = sandbox.run({"program.js": program}, [step]).results
    return exit_verdict(results[0].exit_code if results else None)


def judge_cpp(sandbox: Sandbox, program: str) -> Verdict:
    """Compile a C++ program with g++ -std=c++17 and run it, as MultiPL-E does."""
    compiler = required_tool("g++", INSTALL_GPP)
    steps = [Step((compiler, "program.cpp", "-o", "program", "-std=c++17"), CPP_TIME_LIMIT, throttle=True),
             Step(("./program",), CPP_TIME_LIMIT, throttle=True)]
    results = sandbox.run({"program.cpp": program}, steps).results
    build = results[0].exit_code if results else None
    if build != 0:
        reason = "timed out" if build is None else f"exit status {build}"
        return Verdict(False, f"compile error: {reason}")
    return exit_verdict(results[1].exit_code)


@dataclass(frozen=True)
class Language:
    """How programs of one language run, and a program that must pass where they can run."""

    judge: Callable[[Sandbox, str], Verdict]
    executables: Callable[[], list[str]]
    passing_program: str


LANGUAGES: dict[str, Language] = {
    "python": Language(judge_python, lambda: [sys.executable], "assert True\n"),
    "javascript": Language(
        judge_javascript, lambda: [required_tool("node", INSTALL_NODE)],
        "console.log('ready');\n",
    ),
    "cpp": Language(
        judge_cpp, lambda: [required_tool("g++", INSTALL_GPP)],
        "#include <vector>\nint main() { std::vector<int> v{1}; return v.size() - 1; }\n",
    ),
}


def open_sandbox(languages: Iterable[str], memory_limit_mb: int, workers: int, unsafe: bool) -> Sandbox:
    """A sandbox for these languages' programs, checked by running a passing program of each.

    `CannotExecute` says what is missing (the sandbox tool, node, g++, or a working sandbox).
    """
    languages = list(dict.fromkeys(languages))
    executables = [path for language in languages for path in LANGUAGES[language].executables()]
    if unsafe:
        print("warning: running model-written programs WITHOUT a sandbox, at your own risk", file=sys.stderr)
    sandbox = Sandbox(memory_limit_mb * 1_000_000, executables, workers, unsafe)
    for language in languages:
        verdict = LANGUAGES[language].judge(sandbox, LANGUAGES[language].passing_program)
        if not verdict.passed:
            sandbox.close()
            raise CannotExecute(
                f"a trivial {language} program does not pass in the sandbox ({verdict.status}) "
                f"with --memory-limit-mb {memory_limit_mb}"
            )
    return sandbox


def execute(
    programs: Sequence[Sequence[str]], language: str, sandbox: Sandbox, workers: int, description: str
) -> list[list[Verdict]]:
    """Judge every program (one list per problem), `workers` at a time, with a progress bar."""
    judge = LANGUAGES[language].judge
    verdicts: list[list[Verdict | None]] = [[None] * len(problem) for problem in programs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        jobs = {
            pool.submit(judge, sandbox, program): (problem, sample)
            for problem, problem_programs in enumerate(programs)
            for sample, program in enumerate(problem_programs)
        }
        for job in tqdm(as_completed(jobs), total=len(jobs), desc=description, unit="program"):
            problem, sample = jobs[job]
            verdicts[problem][sample] = job.result()
    return verdicts
