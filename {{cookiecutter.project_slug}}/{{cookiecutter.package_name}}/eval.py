"""Evaluate a global adapter on this challenge's benchmarks, scored as the leaderboard scores.

    python -m <package>.eval --base-model-name-path <model> --peft-path results/<run>/peft_<round>

Prompts, decoding limits and scoring follow the leaderboard's official evaluation of the
challenge, so the same model and batch size give the same scores; prompts are decoded in
real batches that answer each prompt as it would be answered alone.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from .challenges import CHALLENGES, Challenge
from .evaluation import comma_list


def challenge_evaluation() -> ModuleType:
    """The evaluation of this project's challenge: the one the template rendered."""
    modules = [
        f"{__package__}.evaluation.{challenge.evaluation_module}" for challenge in CHALLENGES.values()
    ]
    present = [name for name in modules if importlib.util.find_spec(name) is not None]
    if len(present) != 1:
        raise RuntimeError(f"expected one challenge evaluation in {__package__}.evaluation, found {present}")
    return importlib.import_module(present[0])


def this_challenge() -> Challenge:
    """The challenge of this project: the one whose evaluation the template rendered."""
    module = challenge_evaluation().__name__.rsplit(".", 1)[-1]
    return next(challenge for challenge in CHALLENGES.values() if challenge.evaluation_module == module)


def add_evaluation_arguments(parser: argparse.ArgumentParser, evaluation: ModuleType) -> None:
    """The flags that decide how an adapter is evaluated (`eval` and `sweep` share them):
    the shared ones of every challenge, then the challenge's own."""
    parser.add_argument("--base-model-name-path", help="hub id or local folder of the base model")
    parser.add_argument("--run-name", default="fl", help="names the output files (default: fl)")
    parser.add_argument(
        "--batch-size", type=int, default=16, help="prompts per batch (default: 16)"
    )
    parser.add_argument(
        "--datasets", type=comma_list(evaluation.DATASETS), default=list(evaluation.DATASETS),
        help=f"comma list of {', '.join(evaluation.DATASETS)} (default: all)",
    )
    parser.add_argument(
        "--data-dir", type=Path, metavar="DIR",
        help="local copies instead of the hub, with the hub's columns: "
             + ", ".join(f"DIR/{name}" for name in evaluation.DATA_FILES)
             + " (each .jsonl, .json or .parquet)",
    )
    evaluation.add_arguments(parser)


def build_parser(evaluation: ModuleType) -> argparse.ArgumentParser:
    """The evaluation flags, the adapter, where results go, and re-scoring a saved file."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__}.eval",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--peft-path", help="PEFT adapter folder; without it, the base model is evaluated"
    )
    parser.add_argument(
        "--score-generations", type=Path, metavar="FILE",
        help="re-score a saved generation file of the one --datasets benchmark, without a model",
    )
    parser.add_argument(
        "--output-dir", type=Path, default=Path("benchmarks"),
        help="where results go (default: benchmarks)",
    )
    add_evaluation_arguments(parser, evaluation)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Evaluate (or re-score) and print the scores."""
    evaluation = challenge_evaluation()
    parser = build_parser(evaluation)
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    if args.score_generations is not None:
        if len(args.datasets) != 1:
            parser.error("--score-generations needs exactly one --datasets name")
        if not args.score_generations.is_file():
            parser.error(f"--score-generations: {args.score_generations} is not a file")
        print(evaluation.score_generations(args.score_generations, args.datasets[0], args))
        return
    if args.base_model_name_path is None:
        parser.error("--base-model-name-path is required to generate answers")
    try:
        evaluation.evaluate(args)
    except FileNotFoundError as error:  # a local copy that is not there: the path looked for
        parser.exit(2, f"{parser.prog}: error: {error}\n")


if __name__ == "__main__":
    main()
