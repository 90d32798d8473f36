"""What the sandbox needs from the host, and the one error that says what is missing."""

from __future__ import annotations

import shutil

UNSAFE_FLAG = "--unsafe-no-sandbox"


class CannotExecute(RuntimeError):
    """Programs cannot be run safely here; the message says what is missing."""


def required_tool(name: str, install: str) -> str:
    """The absolute path of an executable on PATH; `CannotExecute` says how to install it."""
    path = shutil.which(name)
    if path is None:
        raise CannotExecute(f"{name} is not installed: {install}")
    return path
