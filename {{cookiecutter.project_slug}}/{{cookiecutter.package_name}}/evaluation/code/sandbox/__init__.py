"""Run untrusted programs in an operating-system sandbox: bubblewrap, a cgroup per program, seccomp.

Each program's job (its files and the commands that build and run it) runs in a sandbox of its
own, made of these parts:
- `view`: what it sees of the file system (the tools, read-only; its own folder and /tmp in
  memory; nothing of the host's homes, /run, /tmp or sockets);
- `limits`: the cgroups that cap the memory (files included), processes and CPU share of all
  its processes together;
- `seccomp`: the system calls and socket families it is refused;
- `users`: under root, the user ids an evaluation's programs run as, a block per evaluation;
- `supervisor`: the sandbox's first process, which runs the commands as the harness does and
  reports, out of the program's reach;
- `cleanup`: deleting the folder of a program run without a sandbox;
- `bubblewrap`: the `Sandbox` that puts them together.
"""

from .bubblewrap import Run, Sandbox, Step, StepResult
from .tools import UNSAFE_FLAG, CannotExecute, required_tool

__all__ = ["UNSAFE_FLAG", "CannotExecute", "Run", "Sandbox", "Step", "StepResult", "required_tool"]
