"""Evaluation as the leaderboard scores it: one module per challenge over one shared engine."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence


def comma_list(known: Sequence[str]) -> Callable[[str], list[str]]:
    """An argparse type: a comma list of names from `known`, in the order given."""

    def parse(value: str) -> list[str]:
        names = [name.strip() for name in value.split(",") if name.strip()]
        if not names or any(name not in known for name in names):
            raise argparse.ArgumentTypeError(f"{value!r}: use a comma list of {', '.join(known)}")
        return names

    return parse
