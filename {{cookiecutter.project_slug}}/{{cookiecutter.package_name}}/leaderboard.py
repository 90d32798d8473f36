"""Whether a run keeps its challenge's rules, recorded beside its results."""

from __future__ import annotations

from logging import WARNING
from pathlib import Path

from flwr.common.logger import log

from .challenges import COMMUNICATION_BUDGET_MB, challenge
from .run_record import write_json
from .settings import RunSettings

LEADERBOARD_FILE = "leaderboard.json"


def broken_rules(settings: RunSettings, num_supernodes: int, comm_total_mb: float) -> list[str]:
    """One sentence per rule of the challenge that this run breaks."""
    rules = challenge(settings.challenge)
    broken = []
    if settings.dataset_name != rules.dataset_name:
        broken.append(
            f"static.dataset.name is {settings.dataset_name!r}, the {rules.title} challenge uses "
            f"{rules.dataset_name!r}"
        )
    if num_supernodes != rules.num_supernodes:
        broken.append(
            f"{num_supernodes} SuperNodes, the {rules.title} challenge uses {rules.num_supernodes}"
        )
    if comm_total_mb > COMMUNICATION_BUDGET_MB:
        broken.append(
            f"communication {comm_total_mb:.0f} MB exceeds the {COMMUNICATION_BUDGET_MB:.0f} MB budget"
        )
    return broken


def write_leaderboard_record(
    run_dir: Path, settings: RunSettings, num_supernodes: int, comm_total_mb: float = 0.0,
    announce: bool = True,
) -> list[str]:
    """Write `leaderboard.json`; with `announce`, log a warning per broken rule."""
    broken = broken_rules(settings, num_supernodes, comm_total_mb)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / LEADERBOARD_FILE, {
        "challenge": settings.challenge,
        "eligible": not broken,
        "broken_rules": broken,
        "dataset_name": settings.dataset_name,
        "num_supernodes": num_supernodes,
        "comm_total_mb": comm_total_mb,
        "comm_budget_mb": COMMUNICATION_BUDGET_MB,
    })
    for rule in broken if announce else []:
        log(WARNING, "Leaderboard rule broken: %s", rule)
    return broken
