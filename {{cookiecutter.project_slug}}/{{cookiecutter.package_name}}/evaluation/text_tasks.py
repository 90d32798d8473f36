"""One evaluation run of a text challenge: load every task's rows, answer, score, write files."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .data import Record, read_accuracy, write_results
from .engine import QUANTIZATIONS, load_model, load_tokenizer, use_adapter

Loaded = tuple[Any, Any]  # a model holding its adapter, and its tokenizer


@dataclass(frozen=True)
class Task:
    """One scored benchmark: its rows, how the model answers them, and its accuracy."""

    name: str  # names its files: acc_<name>_<run>.txt, generation_<name>_<run>.jsonl
    load_examples: Callable[[Path | None], list[Record]]
    answer: Callable[..., list[Record]]  # (model, tokenizer, examples, batch_size, description)
    score: Callable[[Sequence[Record]], float]


def add_quantization_argument(parser: argparse.ArgumentParser) -> None:
    """`--quantization`, as the official text evaluations load the base model."""
    parser.add_argument(
        "--quantization", choices=QUANTIZATIONS, default="4",
        help="bitsandbytes 4-bit (the leaderboard's) or 8-bit as the official evaluation, or none "
             "(float32, for machines where bitsandbytes cannot run) (default: 4)",
    )


def results_table(scores: Mapping[str, float], rows: Mapping[str, int]) -> str:
    """Accuracies in percent, one line per task, then their average."""
    width = max(10, *(len(name) for name in scores))
    lines = [f"{'Benchmark':<{width}} {'Rows':>6} {'Accuracy (%)':>13}"]
    lines += [f"{name:<{width}} {rows[name]:>6} {100 * score:>13.2f}" for name, score in scores.items()]
    average = sum(scores.values()) / len(scores)
    lines.append(f"{'Average':<{width}} {'':>6} {100 * average:>13.2f}")
    return "\n".join(lines)


def adapter_models(args: argparse.Namespace, peft_paths: Sequence[str]) -> Iterator[Loaded]:
    """The base model loaded once, as `evaluate_tasks` loads it, with each adapter in turn."""
    model = load_model(args.base_model_name_path, None, args.quantization)
    tokenizer = load_tokenizer(args.base_model_name_path)
    for peft_path in peft_paths:
        model = use_adapter(model, peft_path)
        yield model, tokenizer


def read_scores(output_dir: Path, run_name: str, names: Sequence[str]) -> dict[str, float]:
    """The accuracies an evaluation wrote for `run_name`, of the tasks that have a file."""
    paths = {name: Path(output_dir) / f"acc_{name}_{run_name}.txt" for name in names}
    return {name: read_accuracy(path) for name, path in paths.items() if path.is_file()}


def evaluate_tasks(
    args: argparse.Namespace, tasks: Sequence[Task], loaded: Loaded | None = None,
    prepare: Callable[[Any, Any], None] | None = None,
) -> dict[str, float]:
    """Answer and score every task; write its files, a summary, and print the accuracies.

    Every task's data is read before the model loads, so a missing file fails at once.
    `loaded` is a model and tokenizer already holding the adapter (the sweep's); without it,
    the base model and `args.peft_path` are loaded. `prepare(model, tokenizer)`, when given,
    runs once before the first task's answers.
    """
    examples = {task.name: task.load_examples(args.data_dir) for task in tasks}
    if loaded is None:
        loaded = load_model(args.base_model_name_path, args.peft_path, args.quantization), \
            load_tokenizer(args.base_model_name_path)
    model, tokenizer = loaded
    if prepare is not None:
        prepare(model, tokenizer)
    scores: dict[str, float] = {}
    for task in tasks:
        records = task.answer(model, tokenizer, examples[task.name], args.batch_size, task.name)
        scores[task.name] = task.score(records)
        write_results(args.output_dir, task.name, args.run_name, records, scores[task.name])

    rows = {name: len(task_examples) for name, task_examples in examples.items()}
    summary = {
        "run_name": args.run_name,
        "base_model": args.base_model_name_path,
        "peft_path": args.peft_path,
        "quantization": args.quantization,
        "batch_size": args.batch_size,
        "accuracy": scores,
        "rows": rows,
        "average": sum(scores.values()) / len(scores),
    }
    summary_path = args.output_dir / f"summary_{args.run_name}.json"
    summary_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(results_table(scores, rows))
    print(f"Results in {args.output_dir}/ (summary: {summary_path.name})")
    return scores


@dataclass(frozen=True)
class DatasetTasks:
    """The interface `eval`, `sweep` and `submit` call, for a challenge whose `--datasets`
    name its tasks (`task` builds one from its name)."""

    datasets: tuple[str, ...]
    task: Callable[[str], Task]

    def task_names(self, args: argparse.Namespace) -> list[str]:
        """The tasks `evaluate` runs for these flags (they name its result files)."""
        return list(args.datasets)

    def evaluate(self, args: argparse.Namespace, loaded: Loaded | None = None) -> dict[str, float]:
        """Answer, score and record every chosen benchmark."""
        return evaluate_tasks(args, [self.task(name) for name in args.datasets], loaded)

    def read_scores(self, output_dir: Path, run_name: str) -> dict[str, float]:
        """The accuracies `evaluate` wrote for `run_name`, of the benchmarks that have a file."""
        return read_scores(output_dir, run_name, self.datasets)
