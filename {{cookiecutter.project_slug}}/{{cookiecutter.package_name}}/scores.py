"""The scores an evaluation wrote, per benchmark, read back from its files (import-light).

Accuracy files hold `Accuracy: <fraction>. `; the Code evaluation's files are the harness's
`{"<task>": {"pass@1": <fraction>}, ...}`. Scores are returned in percent, as the leaderboard
shows them, with the average it ranks by once every benchmark has one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .challenges import Challenge

ACCURACY = re.compile(r"Accuracy:\s*([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)")


def read_score(path: Path) -> float | None:
    """The fraction one result file holds, or None when it is missing or unreadable."""
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            results = json.loads(text)
        except json.JSONDecodeError:
            return None
        values = [entry["pass@1"] for key, entry in results.items()
                  if key != "config" and isinstance(entry, dict) and "pass@1" in entry]
        return float(values[0]) if values else None
    match = ACCURACY.search(text)
    return float(match.group(1)) if match else None


def benchmark_scores(challenge: Challenge, benchmarks_dir: Path, run_name: str) -> dict[str, float]:
    """Percent score of each benchmark of `challenge` that `eval --run-name run_name` wrote."""
    scores = {}
    for title, pattern in zip(challenge.benchmarks, challenge.result_files, strict=True):
        value = read_score(benchmarks_dir / pattern.replace("<run>", run_name))
        if value is not None:
            scores[title] = 100 * value
    return scores


def leaderboard_average(challenge: Challenge, scores: dict[str, float]) -> float | None:
    """The mean of the benchmarks' percent scores, the figure the leaderboard ranks by; None
    until every benchmark has one."""
    if set(scores) != set(challenge.benchmarks):
        return None
    return sum(scores.values()) / len(scores)
