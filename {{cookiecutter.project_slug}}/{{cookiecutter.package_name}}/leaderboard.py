"""Whether a run keeps its challenge's rules, recorded beside its results; the row the
leaderboard shows for an entry, and how the entry differs from the official baseline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from logging import WARNING
from pathlib import Path

from flwr.common.logger import log

from .budget import CommunicationPlan
from .challenges import COMMUNICATION_BUDGET_MB, OFFICIAL_BASELINE_CONFIG, Challenge, challenge
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
    announce: bool = True, plan: CommunicationPlan | None = None,
) -> list[str]:
    """Write `leaderboard.json` (with the communication `plan` made before round 1); with
    `announce`, log a warning per broken rule."""
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
        "comm_projected_mb": plan.total_mb if plan else None,
        "comm_plan": plan.as_dict() if plan else None,
    })
    for rule in broken if announce else []:
        log(WARNING, "Leaderboard rule broken: %s", rule)
    return broken


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(str(cell) for cell in line) + " |" for line in lines)


def percent(score: float | None) -> str:
    """A score (a fraction) as the leaderboard prints it, or `missing`."""
    return "missing" if score is None else f"{100 * score:.2f}"


def leaderboard_scores(
    scores: Mapping[str, float], tasks: Sequence[str]
) -> tuple[list[float | None], float | None]:
    """The scores of the leaderboard's `tasks` in its order (None where missing), and their
    average, which the leaderboard ranks by (None unless all are there)."""
    values = [scores.get(task) for task in tasks]
    present = [value for value in values if value is not None]
    return values, (sum(present) / len(present) if present and len(present) == len(values) else None)


def leaderboard_row(
    rules: Challenge, base_model: str, scores: Mapping[str, float], tasks: Sequence[str], comm_mb: float
) -> str:
    """The entry as the leaderboard shows it: base model, each score, average, communication."""
    values, average = leaderboard_scores(scores, tasks)
    return markdown_table(
        ["Base model", *rules.benchmarks, "Average", "Communication"],
        [[f"`{base_model}`", *(percent(value) for value in values), percent(average), f"{comm_mb:,.2f} MB"]],
    )


def baseline_differences(
    rules: Challenge, run_config: Mapping[str, object]
) -> list[tuple[str, object, object]]:
    """(key, this run's value, the official baseline's) for each baseline setting the run changed."""
    baseline = {**OFFICIAL_BASELINE_CONFIG, "strategy.fraction-train": rules.fraction_train}
    return [(key, run_config.get(key), value) for key, value in baseline.items()
            if run_config.get(key) != value]


def baseline_comparison(
    rules: Challenge, scores: Mapping[str, float], tasks: Sequence[str], run_config: Mapping[str, object]
) -> str:
    """Markdown: the scores beside the official baseline's, then the settings that differ."""
    values, average = leaderboard_scores(scores, tasks)
    baseline = rules.baseline_scores or (None,) * len(tasks)

    def beside(ours: float | None, theirs: float | None) -> list[str]:
        known = ours is not None and theirs is not None
        return [percent(ours), "-" if theirs is None else f"{theirs:.2f}",
                f"{100 * ours - theirs:+.2f}" if known else "-"]

    rows = [[title, *beside(ours, theirs)]
            for title, ours, theirs in zip(rules.benchmarks, values, baseline, strict=True)]
    rows.append(["Average", *beside(average, rules.baseline_average)])
    parts = [markdown_table(["", "This entry", "Official baseline", "Difference"], rows)]
    changed = baseline_differences(rules, run_config)
    if changed:
        rows = [[f"`{key}`", f"`{ours}`", f"`{theirs}`"] for key, ours, theirs in changed]
        parts.append(markdown_table(["Setting", "This entry", "Official baseline"], rows))
    else:
        parts.append("The run used the official baseline's settings.")
    return "\n\n".join(parts)
