"""A run's saved rounds, scored: `sweep.json`, the round the leaderboard would rank first, and
the plot of the scores against the round and against the communication.

Scores are kept as the result files hold them (fractions from 0 to 1); tables and plots show
percent, as the leaderboard does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..run_record import write_json

SWEEP_FILE = "sweep.json"
SWEEP_PLOT = "sweep.png"
EVALUATION_DIR = "evaluation"  # RUN_DIR/evaluation/peft_<round>/: each round's result files


@dataclass
class RoundScores:
    """One saved round, evaluated."""

    round: int
    checkpoint: str  # the adapter folder, `peft_<round>`
    comm_total_mb: float  # communicated up to and including this round
    evaluation_dir: str  # its result files, relative to the run folder
    scores: dict[str, float] = field(default_factory=dict)  # by task
    average: float | None = None  # of the leaderboard's tasks, once all are scored


@dataclass
class SweepRecord:
    """Every evaluated round of one run, and the flags that decided the scores."""

    run_dir: Path
    challenge: str
    metric: str
    leaderboard_tasks: list[str]  # what the leaderboard averages, in its order
    evaluation: dict[str, str]  # the evaluation flags the scores were made with
    rounds: dict[int, RoundScores] = field(default_factory=dict)

    def scored(self, server_round: int, tasks: Sequence[str]) -> bool:
        """Whether the round already has a score for every one of `tasks`."""
        entry = self.rounds.get(server_round)
        return entry is not None and all(task in entry.scores for task in tasks)

    def add(
        self, server_round: int, checkpoint: Path, comm_total_mb: float, scores: Mapping[str, float]
    ) -> None:
        """Record a round's new scores (beside those it already had)."""
        entry = self.rounds.setdefault(server_round, RoundScores(
            round=server_round, checkpoint=checkpoint.name, comm_total_mb=comm_total_mb,
            evaluation_dir=f"{EVALUATION_DIR}/{checkpoint.name}",
        ))
        entry.comm_total_mb = comm_total_mb
        entry.scores.update(scores)
        tasks = self.leaderboard_tasks
        if all(task in entry.scores for task in tasks):
            entry.average = sum(entry.scores[task] for task in tasks) / len(tasks)
        self.rounds = dict(sorted(self.rounds.items()))

    def ranking(self, entry: RoundScores) -> float | None:
        """What a round is ranked by: its average, else the mean of the leaderboard tasks it has."""
        if entry.average is not None:
            return entry.average
        present = [entry.scores[task] for task in self.leaderboard_tasks if task in entry.scores]
        return sum(present) / len(present) if present else None

    def best(self) -> tuple[int | None, str]:
        """The best round (the earliest of equals: it communicated least) and what ranked it."""
        complete = [entry for entry in self.rounds.values() if entry.average is not None]
        if complete:
            how = f"the average of {', '.join(self.leaderboard_tasks)}"
        else:
            complete = [entry for entry in self.rounds.values() if self.ranking(entry) is not None]
            how = "the mean of the leaderboard's benchmarks scored (not all of them are)"
        if not complete:
            return None, "no round has a leaderboard score"
        best = max(complete, key=lambda entry: (self.ranking(entry), -entry.round))
        return best.round, how

    def as_dict(self) -> dict:
        best, how = self.best()
        return {
            "challenge": self.challenge,
            "metric": self.metric,
            "leaderboard_tasks": self.leaderboard_tasks,
            "evaluation": self.evaluation,
            "rounds": [asdict(entry) for entry in self.rounds.values()],
            "best_round": best,
            "ranked_by": how,
        }

    def save(self) -> Path:
        """Write `sweep.json` (whole or not at all)."""
        path = self.run_dir / SWEEP_FILE
        write_json(path, self.as_dict())
        return path

    @classmethod
    def load(cls, run_dir: Path) -> SweepRecord | None:
        """The run's `sweep.json`, if it has one."""
        path = Path(run_dir) / SWEEP_FILE
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        rounds = {int(entry["round"]): RoundScores(**entry) for entry in data["rounds"]}
        return cls(Path(run_dir), data["challenge"], data["metric"], list(data["leaderboard_tasks"]),
                   dict(data["evaluation"]), rounds)

    def table(self) -> str:
        """The scores in percent, one line per round, with the communication up to it."""
        others = [task for entry in self.rounds.values() for task in entry.scores]
        tasks = list(dict.fromkeys([*self.leaderboard_tasks, *others]))
        width = max(8, *(len(task) for task in tasks))
        header = " ".join(f"{task:>{width}}" for task in tasks)
        lines = [f"{'Round':>5} {header} {'Average':>8} {'MB':>12}"]
        for entry in self.rounds.values():
            cells = [f"{100 * entry.scores[task]:>{width}.2f}" if task in entry.scores else f"{'-':>{width}}"
                     for task in tasks]
            average = f"{100 * entry.average:>8.2f}" if entry.average is not None else f"{'-':>8}"
            lines.append(f"{entry.round:>5} " + " ".join(cells) + f" {average} {entry.comm_total_mb:>12,.2f}")
        return "\n".join(lines)

    def plot(self) -> Path:
        """Save `sweep.png`: the scores against the round and the ranking score against the
        megabytes communicated (headless: no pyplot, no display)."""
        entries = [entry for entry in self.rounds.values() if self.ranking(entry) is not None]
        figure = Figure(figsize=(10, 3.8))
        by_round, by_comm = figure.subplots(1, 2)
        for task in self.leaderboard_tasks:
            scored = [entry for entry in entries if task in entry.scores]
            by_round.plot([e.round for e in scored], [100 * e.scores[task] for e in scored], marker=".",
                          linewidth=1, alpha=0.7, label=task)
        rounds = [entry.round for entry in entries]
        ranking = [100 * self.ranking(entry) for entry in entries]
        label = "average" if all(entry.average is not None for entry in entries) else "mean of those scored"
        by_round.plot(rounds, ranking, marker="o", linewidth=2.5, color="black", label=label)
        by_round.set_xlabel("round")
        by_round.xaxis.set_major_locator(MaxNLocator(integer=True))
        by_round.set_ylabel(f"{self.metric} (%)")
        by_round.legend(fontsize="small")
        by_comm.plot([entry.comm_total_mb for entry in entries], ranking, marker="o", color="black")
        for entry, value in zip(entries, ranking, strict=True):
            by_comm.annotate(str(entry.round), (entry.comm_total_mb, value), textcoords="offset points",
                             xytext=(3, 3), fontsize="small")
        by_comm.set_xlabel("communicated up to the round (MB)")
        by_comm.set_ylabel(f"{label} (%)")
        shown = [100 * entry.scores[task] for entry in entries for task in self.leaderboard_tasks
                 if task in entry.scores]
        highest = max([*shown, 1.0])
        for axes, title in ((by_round, "Score per saved round"), (by_comm, "Score against communication")):
            axes.set_title(title)
            axes.set_ylim(0, 1.05 * highest)
            axes.grid(alpha=0.3)
        figure.tight_layout()
        path = self.run_dir / SWEEP_PLOT
        figure.savefig(path, dpi=100)
        return path
