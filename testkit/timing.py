"""Timings for benchmarks on a machine that other work shares."""

from __future__ import annotations

import time
from collections.abc import Callable


def fastest_in_turns(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, tuple[float, object]]:
    """Per named run: the shortest of `repeats` timings, taken in turns, and what it returned.

    Taking the runs in turns, and the fastest of each, lets other load on the machine skew
    them as little as possible.
    """
    results: dict[str, tuple[float, object]] = {name: (float("inf"), None) for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            answers = run()
            seconds = time.perf_counter() - start
            results[name] = (min(results[name][0], seconds), answers)
    return results
