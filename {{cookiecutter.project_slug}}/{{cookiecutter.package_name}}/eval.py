"""Medical evaluation (PubMedQA, MedMCQA, MedQA, CareQA) scored as the official one scores.

    python -m <package>.eval --base-model-name-path <model> --peft-path results/<run>/peft_<round>

Prompts, token limits, greedy decoding and scoring follow the official FlowerTune Medical
evaluation, so the same model and batch size give the same accuracies; prompts are decoded in
real batches (left-padded), which answer each prompt as it would be answered alone.
A leaderboard submission still reports the numbers of the official evaluation.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import datasets
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

from .eval_benchmarks import BENCHMARKS, Benchmark, chat_wrap
from .eval_generation import generate_answers, official_max_new_tokens
from .eval_scoring import accuracy

DATA_FILE_TYPES = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}
# The hub's parquet export of a data set, for the ones that ship a loading script
# (bigbio/*), which `datasets` 4 no longer runs.
PARQUET_EXPORT_REVISION = "refs/convert/parquet"

Record = dict[str, str]


def load_rows_from_hub(benchmark: Benchmark) -> datasets.Dataset:
    """The evaluated split from the Hugging Face hub."""
    try:
        return datasets.load_dataset(benchmark.hub_id, benchmark.hub_config, split=benchmark.split)
    except RuntimeError as error:
        if "Dataset scripts are no longer supported" not in str(error):
            raise
        return datasets.load_dataset(
            benchmark.hub_id,
            revision=PARQUET_EXPORT_REVISION,
            data_dir=benchmark.hub_config,
            split=benchmark.split,
        )


def load_rows_from_dir(data_dir: Path, name: str, split: str) -> datasets.Dataset:
    """The split from a local copy: `<data_dir>/<name>/<split>.{jsonl,json,parquet}`."""
    candidates = [data_dir / name / f"{split}{suffix}" for suffix in DATA_FILE_TYPES]
    path = next((candidate for candidate in candidates if candidate.is_file()), None)
    if path is None:
        raise FileNotFoundError(
            f"--data-dir: none of {', '.join(str(candidate) for candidate in candidates)} exists"
        )
    return datasets.load_dataset(DATA_FILE_TYPES[path.suffix], data_files=str(path), split="train")


def load_examples(name: str, data_dir: Path | None) -> list[Record]:
    """Prompt (before the chat wrapping) and gold answer of every row of a benchmark."""
    benchmark = BENCHMARKS[name]
    if data_dir is None:
        rows = load_rows_from_hub(benchmark)
    else:
        rows = load_rows_from_dir(data_dir, name, benchmark.split)
    examples = []
    for row in rows:
        prompt, gold = benchmark.example(row)
        examples.append({"prompt": prompt, "gold": gold})
    return examples


def load_model(base_model: str, peft_path: str | None, quantization: str):
    """The base model as the official evaluation loads it, with the adapter if one is given.

    4-bit: bitsandbytes defaults and float32; 8-bit: float16; `none`: unquantized float32.
    The weights go to the GPU when there is one, else stay on the CPU.
    """
    quantization_config = {
        "4": BitsAndBytesConfig(load_in_4bit=True),
        "8": BitsAndBytesConfig(load_in_8bit=True),
    }.get(quantization)
    model = AutoModelForCausalLM.from_pretrained(
        base_model,
        quantization_config=quantization_config,
        dtype=torch.float16 if quantization == "8" else torch.float32,
        device_map="auto",
    )
    if peft_path is not None:
        model = PeftModel.from_pretrained(model, peft_path)
    return model.eval()


def load_tokenizer(base_model: str):
    """The base model's tokenizer, able to pad (with EOS when it has no pad token)."""
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def answer_examples(
    model, tokenizer, examples: Sequence[Record], batch_size: int, description: str
) -> list[Record]:
    """The generation records: each example with the model's `output`.

    The official tool stores each output on every row with the same prompt, so rows that
    repeat a prompt all carry the output of the last of them; so do these records.
    """
    prompts = [example["prompt"] for example in examples]
    outputs = generate_answers(
        model,
        tokenizer,
        [chat_wrap(prompt) for prompt in prompts],
        official_max_new_tokens(tokenizer, [example["gold"] for example in examples], batch_size),
        batch_size,
        description,
    )
    last_output = dict(zip(prompts, outputs, strict=True))
    return [{**example, "output": last_output[example["prompt"]]} for example in examples]


def read_generations(path: Path) -> list[Record]:
    """Generation records from a JSON array (the official tool's) or JSON lines (ours)."""
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def write_results(
    output_dir: Path, name: str, run_name: str, records: Sequence[Record], score: float
) -> None:
    """`acc_<name>_<run>.txt` and `generation_<name>_<run>.jsonl`, named as officially."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / f"acc_{name}_{run_name}.txt").write_text(f"Accuracy: {score}. ", encoding="utf-8")
    with open(output_dir / f"generation_{name}_{run_name}.jsonl", "w", encoding="utf-8") as file:
        for record in records:
            file.write(json.dumps(record) + "\n")


def results_table(scores: Mapping[str, float], rows: Mapping[str, int]) -> str:
    """Accuracies in percent, one line per benchmark, then their average."""
    lines = [f"{'Benchmark':<10} {'Rows':>6} {'Accuracy (%)':>13}"]
    lines += [f"{name:<10} {rows[name]:>6} {100 * score:>13.2f}" for name, score in scores.items()]
    average = sum(scores.values()) / len(scores)
    lines.append(f"{'Average':<10} {'':>6} {100 * average:>13.2f}")
    return "\n".join(lines)


def dataset_names(value: str) -> list[str]:
    """Parse `--datasets`: a comma list of known benchmark names."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"{value!r}: use a comma list of {', '.join(BENCHMARKS)}"
        )
    return names


def build_parser() -> argparse.ArgumentParser:
    """The command line, with the official evaluation's flags."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__}.eval",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--base-model-name-path", help="hub id or local folder of the base model")
    parser.add_argument(
        "--peft-path", help="PEFT adapter folder; without it, the base model is evaluated"
    )
    parser.add_argument("--run-name", default="fl", help="names the output files (default: fl)")
    parser.add_argument(
        "--batch-size", type=int, default=16, help="prompts per batch (default: 16)"
    )
    parser.add_argument(
        "--quantization", choices=["4", "8", "none"], default="4",
        help="bitsandbytes 4-bit or 8-bit as the official evaluation, or none (default: 4)",
    )
    parser.add_argument(
        "--datasets", type=dataset_names, default=list(BENCHMARKS),
        help=f"comma list of {', '.join(BENCHMARKS)} (default: all)",
    )
    parser.add_argument(
        "--data-dir", type=Path,
        help="local copies instead of the hub: DIR/<dataset>/<split>.{jsonl,json,parquet}",
    )
    parser.add_argument(
        "--score-generations", type=Path, metavar="FILE",
        help="re-score a saved generation file of the one --datasets benchmark, without a model",
    )
    parser.add_argument(
        "--output-dir", type=Path, default=Path("benchmarks"),
        help="where results go (default: benchmarks)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Evaluate (or re-score) and print the accuracies."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    if args.score_generations is not None:
        if len(args.datasets) != 1:
            parser.error("--score-generations needs exactly one --datasets name")
        answer_type = BENCHMARKS[args.datasets[0]].answer_type
        print(f"Accuracy: {accuracy(read_generations(args.score_generations), answer_type)}")
        return
    if args.base_model_name_path is None:
        parser.error("--base-model-name-path is required to generate answers")

    examples = {name: load_examples(name, args.data_dir) for name in args.datasets}
    model = load_model(args.base_model_name_path, args.peft_path, args.quantization)
    tokenizer = load_tokenizer(args.base_model_name_path)
    scores: dict[str, float] = {}
    for name, benchmark_examples in examples.items():
        records = answer_examples(model, tokenizer, benchmark_examples, args.batch_size, name)
        scores[name] = accuracy(records, BENCHMARKS[name].answer_type)
        write_results(args.output_dir, name, args.run_name, records, scores[name])

    rows = {name: len(benchmark_examples) for name, benchmark_examples in examples.items()}
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


if __name__ == "__main__":
    main()
