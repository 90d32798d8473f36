"""Speed of the built-in Medical evaluation: one prompt at a time against batches of 16.

    python benchmarks/eval_speed.py

Renders the template, builds a tiny random Mistral and answers the MCQ fixture prompts
(MedMCQA, MedQA, CareQA bodies with their instructions) on the CPU, first one prompt at a time
as the official evaluation does (`generate` on each prompt alone), then as the built-in
evaluation does (one benchmark at a time, batches of 16), both with the official token limits.
The two modes are timed in turns, several times, and the fastest time of each counts, so that
other load on the machine skews them as little as possible. The last line reads
`speedup=<x> identical=<true|false>`.

The tokenizer is built like Mistral's (SentencePiece-style BPE, a BOS token) and trained with
about 1,000 entries on the fixture text and these prompts, so that it splits them about as
finely as Mistral's does (some 4 characters a token; the line "prompts:" prints the figure).
The tests' 512-entry byte-level tokenizer needs twice as many tokens for the same text, which
a real model never sees.

With the official limits an MCQ answer is one token, so the batched path answers a batch with
one forward pass: the benchmark's instruction runs once and its cache serves every row. On a
CPU that pass is bound by arithmetic, which batching does not reduce, so the gain comes from
fewer calls and the shared instruction; where one prompt leaves the hardware mostly idle (a
GPU), batches gain far more.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # no progress bars between the figures
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from testkit.benchmark_fixtures import FIXTURE_ROWS  # noqa: E402
from testkit.render import render  # noqa: E402
from testkit.tiny_models import build_tiny_model, train_sentencepiece_style_tokenizer  # noqa: E402

FAMILY = "mistral"
BATCH_SIZE = 16
PROMPTS_PER_BENCHMARK = 64
REPEATS = 15
VOCABULARY_SIZE = 1024
MCQ_BENCHMARKS = ("medmcqa", "medqa", "careqa")


def import_rendered_package(output_dir: Path):
    """Render the default template and return its `eval_benchmarks` and `eval_generation`."""
    project = render(output_dir)
    sys.path.insert(0, str(project))
    package = project.name.replace("-", "_")
    return (
        importlib.import_module(f"{package}.eval_benchmarks"),
        importlib.import_module(f"{package}.eval_generation"),
    )


def fixture_examples(benchmarks) -> dict[str, list[tuple[str, str]]]:
    """Per MCQ benchmark, `PROMPTS_PER_BENCHMARK` (prompt, gold) pairs: its fixture rows, cycled."""
    examples = {}
    for name in MCQ_BENCHMARKS:
        rows = [benchmarks.BENCHMARKS[name].example(row) for row in FIXTURE_ROWS[name]]
        examples[name] = [rows[index % len(rows)] for index in range(PROMPTS_PER_BENCHMARK)]
    return examples


def fastest_in_turns(runs: dict, repeats: int = REPEATS) -> dict[str, tuple[float, list[str]]]:
    """Per named run: the shortest of `repeats` timings (taken in turns) and its answers."""
    results = {name: (float("inf"), []) for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            answers = run()
            seconds = time.perf_counter() - start
            results[name] = (min(results[name][0], seconds), answers)
    return results


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        benchmarks, generation = import_rendered_package(Path(tmp) / "render")
        examples = fixture_examples(benchmarks)
        texts = sorted({line for pairs in examples.values() for prompt, _ in pairs
                        for line in prompt.splitlines()})
        tokenizer = train_sentencepiece_style_tokenizer(texts, VOCABULARY_SIZE)
        model_dir = build_tiny_model(FAMILY, Path(tmp) / "model", tokenizer=tokenizer)
        model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
        tokenizer = AutoTokenizer.from_pretrained(model_dir)

    benchmark_prompts = {
        name: ([benchmarks.chat_wrap(prompt) for prompt, _ in pairs],
               generation.official_max_new_tokens(tokenizer, [gold for _, gold in pairs], BATCH_SIZE))
        for name, pairs in examples.items()
    }
    all_prompts = [prompt for prompts, _ in benchmark_prompts.values() for prompt in prompts]
    lengths = [len(ids) for ids in tokenizer(all_prompts)["input_ids"]]
    limits = {limit for _, limits in benchmark_prompts.values() for limit in limits}

    def one_at_a_time() -> list[str]:
        """As the official evaluation does it: `generate` on each prompt alone."""
        return [generation.greedy_decode(model, tokenizer, [prompt], limit)[0]
                for prompts, limits in benchmark_prompts.values()
                for prompt, limit in zip(prompts, limits, strict=True)]

    def batched() -> list[str]:
        """As the built-in evaluation does it: one benchmark at a time, in batches."""
        return [answer for prompts, limits in benchmark_prompts.values()
                for answer in generation.generate_answers(model, tokenizer, prompts, limits, BATCH_SIZE)]

    batched()  # warm-up
    timings = fastest_in_turns({"one": one_at_a_time, "batched": batched})
    one_at_a_time_seconds, one_at_a_time = timings["one"]
    batched_seconds, batched = timings["batched"]

    print(f"model: tiny random {FAMILY}, CPU, {torch.get_num_threads()} threads")
    print(f"prompts: {len(all_prompts)} MCQ prompts ({len(benchmark_prompts)} benchmarks) of "
          f"{min(lengths)}-{max(lengths)} tokens, {sum(map(len, all_prompts)) / sum(lengths):.1f} "
          f"characters a token; new tokens per answer: {sorted(limits)}")
    print(f"one at a time: {one_at_a_time_seconds:.3f} s")
    print(f"batches of {BATCH_SIZE}: {batched_seconds:.3f} s")
    identical = str(batched == one_at_a_time).lower()
    print(f"speedup={one_at_a_time_seconds / batched_seconds:.2f} identical={identical}")


if __name__ == "__main__":
    main()
