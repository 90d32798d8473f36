"""Evaluate every saved round of a run and find the one to submit.

    python -m <package>.sweep results/<run> [evaluation flags of `eval`]

Each `peft_<round>/` of the run is evaluated on this challenge's benchmarks (all, or those of
`--datasets`) as `python -m <package>.eval` evaluates it, the base model loaded once and the
adapters swapped. The scores, their average (what the leaderboard ranks by) and the
communication up to each round go to RUN_DIR/sweep.json, the plot to RUN_DIR/sweep.png, and
each round's result files to RUN_DIR/evaluation/peft_<round>/. Run again (after more rounds,
say), it evaluates only the rounds that lack a score of a benchmark asked for.
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from .checkpoint import base_model_of, communicated_mb, saved_adapters
from .eval import add_evaluation_arguments, challenge_evaluation, this_challenge
from .evaluation.sweep_record import EVALUATION_DIR, SWEEP_FILE, SWEEP_PLOT, SweepRecord

# flags that choose what is evaluated, or how fast, not what a score is
NOT_DECIDING_SCORES = ("run_dir", "fresh", "datasets", "category", "workers")


def build_parser(evaluation) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__}.sweep", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run's folder, results/<run>")
    parser.add_argument("--fresh", action="store_true",
                        help=f"forget {SWEEP_FILE} and score every round again")
    add_evaluation_arguments(parser, evaluation)
    return parser


def scoring_flags(args: argparse.Namespace) -> dict[str, str]:
    """The flags that decide the scores, as text (what a re-run must repeat)."""
    return {key: str(value) for key, value in sorted(vars(args).items()) if key not in NOT_DECIDING_SCORES}


def changed_flag(before: dict[str, str], now: dict[str, str]) -> str | None:
    """The first scoring flag whose value differs, as `--flag old, not new`."""
    for key in sorted(set(before) | set(now)):
        if before.get(key) != now.get(key):
            return f"--{key.replace('_', '-')} {before.get(key)}, not {now.get(key)}"
    return None


def sweep(args: argparse.Namespace, evaluation, adapters: dict[int, Path], record: SweepRecord) -> None:
    """Evaluate the adapters that lack a score, the base model loaded once, saving after each."""
    wanted = evaluation.task_names(args)
    todo = {server_round: path for server_round, path in adapters.items()
            if not record.scored(server_round, wanted)}
    if not todo:
        print(f"Every saved round already has {', '.join(wanted)} in {record.run_dir / SWEEP_FILE}")
        return
    models = evaluation.adapter_models(args, [str(path) for path in todo.values()])
    progress = tqdm(zip(todo.items(), models, strict=True), total=len(todo), desc="sweep", unit="round")
    for (server_round, path), loaded in progress:
        progress.set_postfix_str(path.name)
        round_args = copy.copy(args)
        round_args.peft_path = str(path)
        round_args.output_dir = record.run_dir / EVALUATION_DIR / path.name
        scores = evaluation.evaluate(round_args, loaded)
        record.add(server_round, path, communicated_mb(path), scores)
        record.save()
        record.plot()


def main(argv: Sequence[str] | None = None) -> SweepRecord:
    """Sweep a run's saved rounds; print the table and the best round."""
    evaluation = challenge_evaluation()
    parser = build_parser(evaluation)
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    adapters = saved_adapters(args.run_dir)
    if not adapters:
        parser.error(f"{args.run_dir} holds no saved round (a peft_<round>/ folder) to evaluate")
    if args.base_model_name_path is None:
        args.base_model_name_path = base_model_of(next(iter(adapters.values())))
        if args.base_model_name_path is None:
            parser.error("--base-model-name-path is needed: the adapters do not name their base model")
    challenge = this_challenge()
    record = None if args.fresh else SweepRecord.load(args.run_dir)
    flags = scoring_flags(args)
    if record is not None and (change := changed_flag(record.evaluation, flags)):
        parser.error(f"{args.run_dir / SWEEP_FILE} was scored with {change}; give the same flags, "
                     "or --fresh to score every round again")
    if record is None:
        record = SweepRecord(args.run_dir, challenge.name, challenge.metric,
                             list(evaluation.LEADERBOARD_TASKS), flags)
    sweep(args, evaluation, adapters, record)
    record.save()
    record.plot()
    print(record.table())
    best, how = record.best()
    if best is None:
        print(f"No best round: {how}")
    else:
        entry = record.rounds[best]
        print(f"Best round: {best} ({100 * record.ranking(entry):.2f}% by {how}; "
              f"{entry.comm_total_mb:,.2f} MB communicated up to it)")
    print(f"Scores in {args.run_dir / SWEEP_FILE}, plot in {args.run_dir / SWEEP_PLOT}")
    return record


if __name__ == "__main__":
    main()
