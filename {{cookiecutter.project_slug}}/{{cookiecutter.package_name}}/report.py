"""Rewrite the README's results section from a run's files alone.

    python -m <package>.report [--run-dir results/<run>] [--eval-run-name fl]

Reads `metrics.json` and `train_loss.png` of the run (the newest under `results/` by default)
and, where the evaluation wrote them, the score files of this project's challenge under
`benchmarks/` (its evaluation module's `read_scores`).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from .challenges import Challenge
from .eval import challenge_evaluation, this_challenge
from .leaderboard import leaderboard_scores, percent
from .run_record import LOSS_PLOT, METRICS_FILE

START = "<!-- results:start -->"
END = "<!-- results:end -->"


def newest_run(results_dir: Path) -> Path:
    """The most recently written run folder that holds a `metrics.json`."""
    runs = sorted(results_dir.glob(f"*/{METRICS_FILE}"), key=lambda path: path.stat().st_mtime)
    if not runs:
        raise SystemExit(f"no {METRICS_FILE} under {results_dir}: run `flwr run .` first")
    return runs[-1].parent


def loss_text(loss: float | None) -> str:
    """A loss for the README, or a dash for a round without one."""
    return "-" if loss is None else f"{loss:.4f}"


def results_section(
    run_dir: Path, readme_dir: Path, rules: Challenge, scores: Mapping[str, float], tasks: Sequence[str]
) -> str:
    """Markdown for the results section, every figure taken from the files; `scores` are the
    evaluation's fractions by task, `tasks` the leaderboard's, in the order of `rules.benchmarks`."""
    metrics = json.loads((run_dir / METRICS_FILE).read_text(encoding="utf-8"))
    totals = metrics["totals"]
    rounds = metrics["rounds"]
    trained = [entry for entry in rounds if entry["train_loss"] is not None]
    evaluated = [entry for entry in rounds if entry.get("eval_loss") is not None]
    plot = Path(os.path.relpath((run_dir / LOSS_PLOT).resolve(), readme_dir.resolve()))
    lines = [
        START,
        f"Run `{run_dir.name}`: {len(rounds)} rounds"
        + (f", final train loss {trained[-1]['train_loss']:.4f}" if trained else "")
        + (f", final validation loss {evaluated[-1]['eval_loss']:.4f}" if evaluated else "") + ".",
        "",
        f"![Loss per round]({plot.as_posix()})",
        "",
        "| Figure | Value |",
        "| --- | --- |",
        f"| Communication | {totals['comm_total_mb']:.2f} MB of {totals['comm_budget_mb']:,.0f} MB "
        f"({totals['comm_budget_used_percent']:.4f}%) |",
        f"| Peak memory, server | {totals['server_peak_rss_mb']:.0f} MB RSS |",
        f"| Peak memory, clients | {totals['client_peak_rss_mb']:.0f} MB RSS, "
        f"{totals['client_cuda_peak_mb']:.0f} MB CUDA |",
        f"| Base model loads | {totals['base_model_loads']} in {totals['client_processes']} "
        "client process(es) |",
    ]
    if evaluated:
        lines += ["", "| Round | Train loss | Validation loss |", "| --- | --- | --- |"]
        lines += [f"| {e['round']} | {loss_text(e['train_loss'])} | {loss_text(e['eval_loss'])} |"
                  for e in evaluated]
    values, average = leaderboard_scores(scores, tasks)
    if any(value is not None for value in values):
        lines += ["", f"| Benchmark | {rules.metric} (%) |", "| --- | --- |"]
        lines += [f"| {title} | {percent(value)} |"
                  for title, value in zip(rules.benchmarks, values, strict=True)]
        if average is not None:
            lines.append(f"| average (the leaderboard's ranking) | {percent(average)} |")
    return "\n".join([*lines, END])


def rewrite_readme(readme: Path, section: str) -> None:
    """Replace the marked results section of the README (appending it if absent)."""
    text = readme.read_text(encoding="utf-8")
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## Results\n\n" + section + "\n"
    readme.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Rewrite the README's results section.")
    parser.add_argument("--run-dir", type=Path, help="a run folder (default: newest in results/)")
    parser.add_argument("--results-dir", type=Path, default=Path("results"))
    parser.add_argument("--benchmarks-dir", type=Path, default=Path("benchmarks"))
    parser.add_argument("--eval-run-name", default="fl", help="the evaluation's --run-name")
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    args = parser.parse_args(argv)
    run_dir = args.run_dir or newest_run(args.results_dir)
    evaluation = challenge_evaluation()
    scores = evaluation.read_scores(args.benchmarks_dir, args.eval_run_name)
    section = results_section(run_dir, args.readme.parent, this_challenge(), scores,
                              list(evaluation.LEADERBOARD_TASKS))
    rewrite_readme(args.readme, section)
    print(f"Rewrote the results section of {args.readme} from {run_dir}")


if __name__ == "__main__":
    main()
