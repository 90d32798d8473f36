"""Speed of the built-in Medical evaluation: one prompt at a time against batches of 16.

    python benchmarks/eval_speed.py

Renders the template, builds a tiny random model and answers the MCQ fixture prompts (MedMCQA,
MedQA, CareQA bodies with their instructions) on the CPU, first one prompt at a time as the
official evaluation does, and in batches of 16, both with the official token limits. The two
modes are timed in turns, several times, and the fastest time of each counts, so that other
load on the machine skews them as little as possible. The last line reads
`speedup=<x> identical=<true|false>`.

"One at a time" is the official way: `generate` on each prompt alone. The batched path answers
one-token rows with one forward pass per batch, the batch's shared instruction run once.
With the official limits an MCQ answer is one token, so each prompt costs one forward pass over
its few hundred tokens; on a CPU that pass is bound by arithmetic, which batching does not reduce,
so the gain comes from fewer calls and the shared instruction. Where one prompt leaves the
hardware mostly idle (a GPU), batches gain far more.
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
from testkit.tiny_models import build_tiny_model  # noqa: E402

FAMILY = "mistral"
BATCH_SIZE = 16
NUM_PROMPTS = 64
REPEATS = 7
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


def fixture_prompts(benchmarks) -> tuple[list[str], list[str]]:
    """`NUM_PROMPTS` chat-wrapped MCQ prompts (the fixture rows, cycled) and their golds."""
    examples = [
        benchmarks.BENCHMARKS[name].example(row)
        for name in MCQ_BENCHMARKS for row in FIXTURE_ROWS[name]
    ]
    cycled = [examples[index % len(examples)] for index in range(NUM_PROMPTS)]
    return [benchmarks.chat_wrap(prompt) for prompt, _ in cycled], [gold for _, gold in cycled]


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
        model_dir = build_tiny_model(FAMILY, Path(tmp) / "model")
        model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
        tokenizer = AutoTokenizer.from_pretrained(model_dir)

    prompts, golds = fixture_prompts(benchmarks)
    limits = generation.official_max_new_tokens(tokenizer, golds, BATCH_SIZE)
    lengths = [len(tokenizer(prompt)["input_ids"]) for prompt in prompts]

    def one_at_a_time() -> list[str]:
        """As the official evaluation does it: `generate` on each prompt alone."""
        return [generation.greedy_decode(model, tokenizer, [prompt], limit)[0]
                for prompt, limit in zip(prompts, limits, strict=True)]

    def batched() -> list[str]:
        return generation.generate_answers(model, tokenizer, prompts, limits, BATCH_SIZE)

    batched()  # warm-up
    timings = fastest_in_turns({"one": one_at_a_time, "batched": batched})
    one_at_a_time_seconds, one_at_a_time = timings["one"]
    batched_seconds, batched = timings["batched"]

    print(f"model: tiny random {FAMILY}, CPU, {torch.get_num_threads()} threads")
    print(f"prompts: {len(prompts)} MCQ prompts of {min(lengths)}-{max(lengths)} tokens, "
          f"new tokens per answer: {sorted(set(limits))}")
    print(f"one at a time: {one_at_a_time_seconds:.3f} s")
    print(f"batches of {BATCH_SIZE}: {batched_seconds:.3f} s")
    identical = str(batched == one_at_a_time).lower()
    print(f"speedup={one_at_a_time_seconds / batched_seconds:.2f} identical={identical}")


if __name__ == "__main__":
    main()
