"""Whether a run keeps the Medical challenge's rules, recorded beside its results."""

from __future__ import annotations

from logging import WARNING
from pathlib import Path

from flwr.common.logger import log

from .run_record import write_json
from .settings import (
    COMMUNICATION_BUDGET_MB,
    LEADERBOARD_DATASET,
    LEADERBOARD_NUM_SUPERNODES,
    RunSettings,
)

LEADERBOARD_FILE = "leaderboard.json"


def broken_rules(settings: RunSettings, num_supernodes: int, comm_total_mb: float) -> list[str]:
    """One sentence per rule of the challenge that this run breaks."""
    broken = []
    if settings.dataset_name != LEADERBOARD_DATASET:
        broken.append(
            f"static.dataset.name is {settings.dataset_name!r}, the challenge uses {LEADERBOARD_DATASET!r}"
        )
    if num_supernodes != LEADERBOARD_NUM_SUPERNODES:
        broken.append(f"{num_supernodes} SuperNodes, the challenge uses {LEADERBOARD_NUM_SUPERNODES}")
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
