"""Pack one saved round of a run for the leaderboard, in RUN_DIR/submission/.

    python -m <package>.submit results/<run> [--round N] [--force]

The round is `--round`, else the sweep's best (`python -m <package>.sweep`), else the last
saved one. The folder holds its adapter (`adapter/`), its evaluation files (`evaluation/`, from
RUN_DIR/evaluation/peft_<round>/ or `--eval-dir`), the run config, the rule record
(`leaderboard.json`), the communication (`communication.json`) and a README with the row the
leaderboard shows and how the entry differs from the official baseline. A run that broke a
rule, or a benchmark without a result, is named on one line each, and the command exits with
status 1 (the folder is still written, marked as not ready); `--force` exits with 0.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from .challenges import COMMUNICATION_BUDGET_MB
from .checkpoint import ADAPTER_CONFIG, ADAPTER_WEIGHTS, base_model_of, communicated_mb, saved_adapters
from .eval import challenge_evaluation, this_challenge
from .evaluation.sweep_record import EVALUATION_DIR, SweepRecord
from .leaderboard import LEADERBOARD_FILE, baseline_comparison, leaderboard_row
from .run_record import METRICS_FILE, RUN_CONFIG_FILE, write_json

SUBMISSION_DIR = "submission"
COMMUNICATION_FILE = "communication.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__}.submit", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run's folder, results/<run>")
    parser.add_argument("--round", type=int,
                        help="the round to submit (default: the sweep's best, else the last)")
    parser.add_argument("--eval-dir", type=Path,
                        help="the round's evaluation files (default: RUN_DIR/evaluation/peft_<round>)")
    parser.add_argument("--run-name", default="fl", help="the --run-name the evaluation used (default: fl)")
    parser.add_argument("--force", action="store_true", help="exit with 0 even when something is wrong")
    return parser


def chosen_round(args: argparse.Namespace, adapters: dict[int, Path]) -> tuple[int, str]:
    """The round to submit and why that one."""
    if args.round is not None:
        return args.round, "--round"
    record = SweepRecord.load(args.run_dir)
    best = record.best()[0] if record else None
    if best is not None and best in adapters:
        return best, "the sweep's best round"
    return max(adapters), "the last saved round (no sweep)"


def read_json(path: Path, problems: list[str], missing: str) -> dict:
    """A JSON file of the run, or {} with `missing` noted as a problem."""
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    problems.append(f"{path} is missing: {missing}")
    return {}


def readme(
    challenge, base_model: str, server_round: int, why: str, scores: dict, tasks: Sequence[str],
    communication: dict, run_config: dict, problems: Sequence[str], run_name: str,
) -> str:
    """The submission's README: the leaderboard row, its state, and the baseline comparison."""
    status = (["**Not ready to submit:**", "", *(f"- {problem}" for problem in problems)] if problems
              else ["Ready to submit: every benchmark has a result and the run kept the rules."])
    last = int(run_config.get("num-server-rounds", server_round))
    if server_round != last:
        status += ["", f"Round {server_round} is not the run's last ({last}): the leaderboard asks for the "
                   f"last round's adapter, so say which round you submit, or train again with "
                   f"`num-server-rounds = {server_round}`."]
    return "\n".join([
        f"# {challenge.title} challenge: round {server_round} ({why})",
        "",
        *status,
        "",
        "## The leaderboard row",
        "",
        leaderboard_row(challenge, base_model, scores, tasks, communication["comm_mb"]),
        "",
        f"Scores in percent ({challenge.metric}); the average is what the leaderboard ranks by. "
        f"Communication: up to round {server_round}, of the {COMMUNICATION_BUDGET_MB:,.0f} MB budget "
        f"({communication['run_comm_total_mb']:,.2f} MB in the whole run).",
        "",
        "## Compared with the official baseline",
        "",
        baseline_comparison(challenge, scores, tasks, run_config),
        "",
        "## What is here",
        "",
        f"- `adapter/`: the global adapter of round {server_round} (a PEFT folder)",
        f"- `evaluation/`: the result files of its evaluation (run name `{run_name}`)",
        f"- `{RUN_CONFIG_FILE}`: the run config the run started with",
        f"- `{LEADERBOARD_FILE}`: whether the run kept the challenge's rules",
        f"- `{COMMUNICATION_FILE}`: the megabytes communicated",
        "",
        f"Submit with the official evaluation's scores: {challenge.official_evaluation}",
        "",
    ])


def pack(args: argparse.Namespace, adapters: dict[int, Path]) -> tuple[Path, list[str]]:
    """Write the submission folder; return it and the problems found."""
    evaluation, challenge = challenge_evaluation(), this_challenge()
    server_round, why = chosen_round(args, adapters)
    if server_round not in adapters:
        raise SystemExit(f"error: --round {server_round}: {args.run_dir} has no saved peft_{server_round}/; "
                         f"saved rounds: {', '.join(map(str, adapters))}")
    adapter = adapters[server_round]
    eval_dir = args.eval_dir or args.run_dir / EVALUATION_DIR / adapter.name
    tasks = list(evaluation.LEADERBOARD_TASKS)
    scores = evaluation.read_scores(eval_dir, args.run_name) if eval_dir.is_dir() else {}
    problems = [f"no {title} result ({task}, run name {args.run_name!r}) in {eval_dir}: run "
                f"`python -m {__package__}.sweep {args.run_dir}`"
                for title, task in zip(challenge.benchmarks, tasks, strict=True) if task not in scores]
    leaderboard = read_json(args.run_dir / LEADERBOARD_FILE, problems, "the run's rule record")
    problems += [f"the run broke a rule: {rule}" for rule in leaderboard.get("broken_rules", [])]
    run_config = read_json(args.run_dir / RUN_CONFIG_FILE, problems, "the run config the run started with")
    metrics = read_json(args.run_dir / METRICS_FILE, problems, "the run's record of its rounds")
    communication = {
        "round": server_round,
        "comm_mb": communicated_mb(adapter),
        "run_comm_total_mb": metrics.get("totals", {}).get("comm_total_mb", communicated_mb(adapter)),
        "comm_projected_mb": leaderboard.get("comm_projected_mb"),
        "comm_budget_mb": COMMUNICATION_BUDGET_MB,
    }

    submission = args.run_dir / SUBMISSION_DIR
    shutil.rmtree(submission, ignore_errors=True)
    (submission / "adapter").mkdir(parents=True)
    for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        shutil.copy2(adapter / name, submission / "adapter" / name)
    (submission / "evaluation").mkdir()
    for path in sorted(eval_dir.glob(f"*_{args.run_name}.*")) if eval_dir.is_dir() else []:
        shutil.copy2(path, submission / "evaluation" / path.name)
    write_json(submission / RUN_CONFIG_FILE, run_config)
    write_json(submission / LEADERBOARD_FILE, leaderboard)
    write_json(submission / COMMUNICATION_FILE, communication)
    base_model = str(run_config.get("model.name") or base_model_of(adapter))
    (submission / "README.md").write_text(
        readme(challenge, base_model, server_round, why, scores, tasks, communication, run_config, problems,
               args.run_name),
        encoding="utf-8",
    )
    return submission, problems


def main(argv: Sequence[str] | None = None) -> int:
    """Pack the submission; exit with 1 when something is wrong, unless `--force`."""
    parser = build_parser()
    args = parser.parse_args(argv)
    adapters = saved_adapters(args.run_dir)
    if not adapters:
        parser.error(f"{args.run_dir} holds no saved round (a peft_<round>/ folder)")
    submission, problems = pack(args, adapters)
    for problem in problems:
        print(f"{'warning' if args.force else 'error'}: {problem}", file=sys.stderr)
    state = "NOT ready to submit" if problems else "ready to submit"
    print(f"Wrote {submission} ({state}; see its README.md)")
    return 1 if problems and not args.force else 0


if __name__ == "__main__":
    sys.exit(main())
