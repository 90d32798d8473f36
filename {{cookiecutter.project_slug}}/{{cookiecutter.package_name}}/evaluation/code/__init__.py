"""Code evaluation: pass@1 on HumanEval, MBPP, MultiPL-E JavaScript and MultiPL-E C++, as the
leaderboard's bigcode-evaluation-harness computes it, with every program run in a sandbox.

    python -m <package>.eval --base-model-name-path <model> --peft-path results/<run>/peft_<round>
    python -m <package>.eval --score-generations generations_humaneval_fl.json --datasets humaneval
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from accelerate.utils import set_seed

from .execution import CPP_TIME_LIMIT, NODE_TIME_LIMIT, PYTHON_TIME_LIMIT, Verdict, execute, open_sandbox
from .generation import adapter_models as generation_models
from .generation import generate_completions, load_generation_model
from .sandbox import UNSAFE_FLAG, CannotExecute, Sandbox
from .scoring import pass_at_ks
from .tasks import TASKS, CodeTask, InvalidInput, Problems, load_problems, postprocess, program

DATASETS: tuple[str, ...] = ("humaneval", "mbpp", "multiple-js", "multiple-cpp")
DATA_FILES = tuple(f"{name}/test" for name in DATASETS)  # what --data-dir holds: <dir>/<file>.{jsonl,...}
LEADERBOARD_TASKS = DATASETS  # averaged by the leaderboard, in the order of its columns
DEFAULT_MEMORY_LIMIT_MB = 4000  # 4 GB per program


def bounded_number(kind: type, minimum: float, maximum: float | None = None, open_minimum: bool = False):
    """An argparse type: a number of `kind` within the bounds, else a message naming them."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            kind_name = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind_name}") from None
        below = value <= minimum if open_minimum else value < minimum
        if below or (maximum is not None and value > maximum):
            low = f"above {minimum}" if open_minimum else f"at least {minimum}"
            high = f" and at most {maximum}" if maximum is not None else ""
            raise argparse.ArgumentTypeError(f"{text} is out of range: use a value {low}{high}")
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The Code evaluation's own flags (generation, sandbox), beside the shared ones."""
    group = parser.add_argument_group("Code challenge")
    group.add_argument(
        "--max-length-generation", type=bounded_number(int, 1), metavar="TOKENS",
        help="prompt and completion tokens together (default: 1024, and 2048 for mbpp, as the official run)",
    )
    group.add_argument("--greedy", action="store_true",
                       help="greedy decoding instead of the official run's sampling")
    group.add_argument("--temperature", type=bounded_number(float, 0, open_minimum=True), default=0.2,
                       help="sampling temperature (default: 0.2)")
    group.add_argument("--top-p", type=bounded_number(float, 0, 1, open_minimum=True), default=0.95,
                       help="nucleus sampling share (default: 0.95; top-k is off, as officially)")
    group.add_argument("--n-samples", type=bounded_number(int, 1), default=1,
                       help="programs generated per problem (default: 1, for pass@1); with "
                            "--score-generations, as the harness, each problem's first N programs")
    group.add_argument("--seed", type=int, default=0, help="random seed, set before each task (default: 0)")
    group.add_argument(
        "--memory-limit-mb", type=bounded_number(int, 256), default=DEFAULT_MEMORY_LIMIT_MB,
        help=f"memory of each program in MB: all its processes, files and /tmp together "
             f"(default: {DEFAULT_MEMORY_LIMIT_MB}); the programs running at once hold at most this "
             "plus 256 MB for each other worker",
    )
    group.add_argument("--workers", type=bounded_number(int, 1), default=os.cpu_count() or 1,
                       help="programs run at once (default: the number of CPUs)")
    group.add_argument(UNSAFE_FLAG, action="store_true",
                       help="run the model's programs WITHOUT a sandbox, at your own risk")


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Missing tools and unusable inputs end the command with their one-line message."""
    try:
        yield
    except (CannotExecute, InvalidInput) as error:
        raise SystemExit(f"error: {error}") from None


def judge_generations(
    task: CodeTask, generations: Sequence[Sequence[str]], tests: Sequence[str], sandbox: Sandbox, workers: int
) -> list[list[Verdict]]:
    """Run each generation with its problem's tests appended (the first problems' tests, as
    the harness pairs them, when there are fewer generations than problems)."""
    programs = [[program(generation, problem_tests) for generation in problem_generations]
                for problem_generations, problem_tests in zip(generations, tests[: len(generations)],
                                                              strict=True)]
    return execute(programs, task.language, sandbox, workers, f"{task.name} programs")


def passed(verdicts: Sequence[Sequence[Verdict]]) -> list[list[bool]]:
    return [[verdict.passed for verdict in problem] for problem in verdicts]


def read_generations_file(path: Path) -> list[list[str]]:
    """A generations file: a JSON list with one list of programs per problem (ours or the harness's)."""
    shape = "a JSON list with one list of program strings per problem"
    try:
        generations = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InvalidInput(f"{path}: cannot read it as JSON ({error}); it must be {shape}") from None
    if not isinstance(generations, list) or not generations:
        raise InvalidInput(f"{path}: it must be {shape}, not {str(generations)[:40]!r}")
    for index, problem in enumerate(generations):
        if not isinstance(problem, list) or not problem or not all(isinstance(text, str) for text in problem):
            raise InvalidInput(f"{path}: problem {index} is {str(problem)[:60]!r}; it must be {shape}")
    return generations


def programs_the_harness_scores(
    generations: list[list[str]], problem_count: int, n_samples: int
) -> tuple[list[list[str]], list[str]]:
    """What the harness scores of a loaded file, and notes saying so where it is not all of it.

    It keeps as many problems as the data has, from the first; and when the first problem has
    more programs than `--n_samples` (1 by default), the first `n_samples` of each problem.
    """
    notes = []
    if len(generations) != problem_count:
        notes.append(f"the file has {len(generations)} problems and the data {problem_count}: "
                     f"scoring the first {min(len(generations), problem_count)}, as the harness does")
        generations = generations[:problem_count]
    if len(generations[0]) > n_samples:
        notes.append(f"scoring the first {n_samples} program(s) of each problem (--n-samples), "
                     "as the harness does")
        generations = [problem[:n_samples] for problem in generations]
    return generations, notes


def score_generations(path: Path, dataset: str, args: argparse.Namespace) -> str:
    """Run a saved generations file against the task's tests; the line to print."""
    with one_line_errors():
        task = TASKS[dataset]
        problems = load_problems(task, args.data_dir)
        generations, notes = programs_the_harness_scores(
            read_generations_file(path), len(problems.tests), args.n_samples
        )
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        with open_sandbox([task.language], args.memory_limit_mb, args.workers,
                          args.unsafe_no_sandbox) as sandbox:
            verdicts = judge_generations(task, generations, problems.tests, sandbox, args.workers)
    return f"pass@1: {pass_at_ks(passed(verdicts))['pass@1']}"


def evaluation_settings(
    args: argparse.Namespace, max_length: int, stop_words: list[str], sandbox: Sandbox
) -> dict[str, Any]:
    """What decided a task's scores, for its results file."""
    return {
        "base_model": args.base_model_name_path,
        "peft_path": args.peft_path,
        "precision": "fp32",
        "do_sample": not args.greedy,
        "temperature": None if args.greedy else args.temperature,
        "top_p": None if args.greedy else args.top_p,
        "top_k": 0,
        "n_samples": args.n_samples,
        "seed": args.seed,
        "max_length_generation": max_length,
        "batch_size": args.batch_size,
        "stop_words": stop_words,
        "sandbox": "none" if args.unsafe_no_sandbox else "bubblewrap",
        "sandbox_holds": sandbox.description,
        "memory_limit_mb": args.memory_limit_mb,
        "time_limits_s": {"python": PYTHON_TIME_LIMIT, "node": NODE_TIME_LIMIT,
                          "g++": CPP_TIME_LIMIT, "c++ program": CPP_TIME_LIMIT},
    }


def evaluate_task(
    task: CodeTask, problems: Problems, model, tokenizer, sandbox: Sandbox, args: argparse.Namespace
) -> float:
    """Generate, post-process, save, run and score one task; its pass@1."""
    max_length = args.max_length_generation or task.max_length
    stop_words = [*problems.stop_words, *([tokenizer.eos_token] if tokenizer.eos_token else [])]
    sampling = ({"do_sample": False} if args.greedy else
                {"do_sample": True, "temperature": args.temperature, "top_p": args.top_p, "top_k": 0})
    set_seed(args.seed, device_specific=False)
    completions = generate_completions(
        model, tokenizer, problems.prompts, stop_words, max_length, args.n_samples, args.batch_size,
        sampling, task.name,
    )
    generations = [[postprocess(prompt, completion, stop_words) for completion in problem_completions]
                   for prompt, problem_completions in zip(problems.prompts, completions, strict=True)]
    args.output_dir.mkdir(parents=True, exist_ok=True)
    generations_path = args.output_dir / f"generations_{task.name}_{args.run_name}.json"
    generations_path.write_text(json.dumps(generations), encoding="utf-8")
    verdicts = judge_generations(task, generations, problems.tests, sandbox, args.workers)
    scores = pass_at_ks(passed(verdicts))
    results = {
        task.name: scores,
        "config": evaluation_settings(args, max_length, stop_words, sandbox),
        "verdicts": [[verdict.status for verdict in problem] for problem in verdicts],
    }
    results_path = args.output_dir / f"evaluation_results_{task.name}_{args.run_name}.json"
    results_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return scores["pass@1"]


def results_table(scores: Mapping[str, float], problems: Mapping[str, int]) -> str:
    """pass@1 in percent, one line per task, then the average of the tasks."""
    lines = [f"{'Task':<13} {'Problems':>8} {'pass@1 (%)':>11}"]
    lines += [f"{name:<13} {problems[name]:>8} {100 * score:>11.2f}" for name, score in scores.items()]
    lines.append(f"{'Average':<13} {'':>8} {100 * sum(scores.values()) / len(scores):>11.2f}")
    return "\n".join(lines)


def task_names(args: argparse.Namespace) -> list[str]:
    """The tasks `evaluate` runs for these flags (they name its result files)."""
    return list(args.datasets)


def adapter_models(args: argparse.Namespace, peft_paths: Sequence[str]) -> Iterator[tuple[Any, Any]]:
    """The base model loaded once, with each adapter merged in turn (for `evaluate`)."""
    return generation_models(args.base_model_name_path, peft_paths)


def read_scores(output_dir: Path, run_name: str) -> dict[str, float]:
    """The pass@1 `evaluate` wrote for `run_name`, of the tasks that have a results file."""
    scores = {}
    for name in DATASETS:
        path = Path(output_dir) / f"evaluation_results_{name}_{run_name}.json"
        if path.is_file():
            scores[name] = float(json.loads(path.read_text(encoding="utf-8"))[name]["pass@1"])
    return scores


def evaluate(args: argparse.Namespace, loaded: tuple[Any, Any] | None = None) -> dict[str, float]:
    """Generate each task's programs, run them in the sandbox, write the files, print pass@1.

    The data and the sandbox are checked before the model loads, so what is missing fails at once.
    `loaded` is a model and tokenizer already holding the adapter (the sweep's); without it,
    the base model with `args.peft_path` merged is loaded.
    """
    with one_line_errors():
        tasks = [TASKS[name] for name in args.datasets]
        problems = {task.name: load_problems(task, args.data_dir) for task in tasks}
        with open_sandbox([task.language for task in tasks], args.memory_limit_mb, args.workers,
                          args.unsafe_no_sandbox) as sandbox:
            model, tokenizer = loaded or load_generation_model(args.base_model_name_path, args.peft_path)
            scores = {task.name: evaluate_task(task, problems[task.name], model, tokenizer, sandbox, args)
                      for task in tasks}
    counts = {name: len(task_problems.prompts) for name, task_problems in problems.items()}
    print(results_table(scores, counts))
    print(f"Results in {args.output_dir}/ (generations_<task>_{args.run_name}.json, "
          f"evaluation_results_<task>_{args.run_name}.json)")
    return scores
