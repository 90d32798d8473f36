"""Speed of the built-in evaluations against the official ways, at identical results.

    python benchmarks/eval_speed.py

Medical: one prompt at a time against batches of 16 (below). Finance: the official way decodes
every batch of 16 greedily until every row ended or 512 tokens in all; the built-in way stops a
row once its score is settled and drops it from its batch. The Finance model is the tiny random
Mistral trained for a few seconds to answer each prompt with its label and an end of sequence,
as a fine-tuned model does. The last two lines read
`medical: speedup=<x> identical=<true|false>` and
`finance: speedup=<x> same_accuracy=<true|false> same_predictions=<true|false>`.

Renders the template, builds a tiny random Mistral and answers the MCQ fixture prompts
(MedMCQA, MedQA, CareQA bodies with their instructions) on the CPU, first one prompt at a time
as the official evaluation does (`generate` on each prompt alone), then as the built-in
evaluation does (one benchmark at a time, batches of 16), both with the official token limits.
The two modes are timed in turns, several times, and the fastest time of each counts, so that
other load on the machine skews them as little as possible. The last line reads
the `medical:` line above.

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

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # no progress bars between the figures
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from testkit.benchmark_fixtures import FIXTURE_ROWS  # noqa: E402
from testkit.render import import_rendered_package  # noqa: E402
from testkit.timing import fastest_in_turns  # noqa: E402
from testkit.tiny_models import build_tiny_model, train_sentencepiece_style_tokenizer  # noqa: E402

FAMILY = "mistral"
BATCH_SIZE = 16
PROMPTS_PER_BENCHMARK = 64
REPEATS = 15
VOCABULARY_SIZE = 1024
MCQ_BENCHMARKS = ("medmcqa", "medqa", "careqa")
FINANCE_PROMPTS = 48
FINANCE_TRAIN_STEPS = 60


def fixture_examples(benchmarks) -> dict[str, list[tuple[str, str]]]:
    """Per MCQ benchmark, `PROMPTS_PER_BENCHMARK` (prompt, gold) pairs: its fixture rows, cycled."""
    examples = {}
    for name in MCQ_BENCHMARKS:
        rows = [benchmarks.BENCHMARKS[name].example(row) for row in FIXTURE_ROWS[name]]
        examples[name] = [rows[index % len(rows)] for index in range(PROMPTS_PER_BENCHMARK)]
    return examples


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        benchmarks, multiple_choice, generation = import_rendered_package(
            Path(tmp) / "render", "medical", "evaluation.medical", "evaluation.multiple_choice",
            "evaluation.engine",
        )
        examples = fixture_examples(benchmarks)
        texts = sorted({line for pairs in examples.values() for prompt, _ in pairs
                        for line in prompt.splitlines()})
        tokenizer = train_sentencepiece_style_tokenizer(texts, VOCABULARY_SIZE)
        model_dir = build_tiny_model(FAMILY, Path(tmp) / "model", tokenizer=tokenizer)
        model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
        tokenizer = AutoTokenizer.from_pretrained(model_dir)

    benchmark_prompts = {
        name: ([multiple_choice.chat_wrap(prompt) for prompt, _ in pairs],
               multiple_choice.official_max_new_tokens(tokenizer, [gold for _, gold in pairs], BATCH_SIZE))
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
    timings = fastest_in_turns({"one": one_at_a_time, "batched": batched}, REPEATS)
    one_at_a_time_seconds, one_at_a_time = timings["one"]
    batched_seconds, batched = timings["batched"]

    print(f"model: tiny random {FAMILY}, CPU, {torch.get_num_threads()} threads")
    print(f"prompts: {len(all_prompts)} MCQ prompts ({len(benchmark_prompts)} benchmarks) of "
          f"{min(lengths)}-{max(lengths)} tokens, {sum(map(len, all_prompts)) / sum(lengths):.1f} "
          f"characters a token; new tokens per answer: {sorted(limits)}")
    print(f"one at a time: {one_at_a_time_seconds:.3f} s")
    print(f"batches of {BATCH_SIZE}: {batched_seconds:.3f} s")
    identical = str(batched == one_at_a_time).lower()
    finance_line = finance_speed()
    print(f"medical: speedup={one_at_a_time_seconds / batched_seconds:.2f} identical={identical}")
    print(finance_line)


def train_to_answer(model, tokenizer, texts: list[str], steps: int = FINANCE_TRAIN_STEPS) -> None:
    """A few seconds of plain causal-LM training on `texts` (prompt, label, end of sequence)."""
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    encoded = tokenizer([text + tokenizer.eos_token for text in texts], return_tensors="pt", padding=True)
    labels = encoded["input_ids"].masked_fill(encoded["attention_mask"] == 0, -100)
    model.train()
    for _ in range(steps):
        loss = model(**encoded, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()


def finance_speed() -> str:
    """Official Finance decoding against the built-in one on the same prompts and model."""
    from testkit.challenge_data import finance_rows

    labels = {"negative": 0, "neutral": 1, "positive": 2}
    with tempfile.TemporaryDirectory() as tmp:
        (finance,) = import_rendered_package(Path(tmp) / "render", "finance", "evaluation.finance")
        examples = [finance.fpb_example({"sentence": row["input"], "label": labels[row["output"]]})
                    for row in finance_rows(FINANCE_PROMPTS)]
        texts = [example["prompt"] + example["gold"] for example in examples]
        tokenizer = train_sentencepiece_style_tokenizer(texts, VOCABULARY_SIZE)
        model_dir = build_tiny_model(FAMILY, Path(tmp) / "model", tokenizer=tokenizer)
        model = AutoModelForCausalLM.from_pretrained(model_dir)
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    train_to_answer(model, tokenizer, texts)

    def official() -> list[dict]:
        """Every batch of 16 decoded greedily to 512 tokens in all, as the official tool does."""
        records = []
        for start in range(0, len(examples), BATCH_SIZE):
            batch = examples[start : start + BATCH_SIZE]
            encoded = tokenizer([example["prompt"] for example in batch], return_tensors="pt", padding=True)
            with torch.inference_mode():
                output = model.generate(
                    **encoded, max_length=finance.MAX_LENGTH, do_sample=False,
                    eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                )
            decoded = tokenizer.batch_decode(output, skip_special_tokens=True)
            records += [{**example, "output": text} for example, text in zip(batch, decoded, strict=True)]
        return records

    def built_in() -> list[dict]:
        return finance.answer_examples(model, tokenizer, examples, BATCH_SIZE, None)

    timings = fastest_in_turns({"official": official, "built_in": built_in}, repeats=3)
    (official_seconds, official_records), (built_in_seconds, built_in_records) = (
        timings["official"], timings["built_in"])
    same_predictions = [finance.prediction(r) for r in official_records] == [
        finance.prediction(r) for r in built_in_records]
    same_accuracy = finance.accuracy(official_records) == finance.accuracy(built_in_records)
    new_tokens = [len(tokenizer(r["output"])["input_ids"]) - len(tokenizer(r["prompt"])["input_ids"])
                  for r in built_in_records]
    print(f"finance prompts: {len(examples)} FPB-style prompts, model trained {FINANCE_TRAIN_STEPS} steps to "
          f"answer; accuracy {finance.accuracy(built_in_records):.3f}; built-in new tokens per row "
          f"{min(new_tokens)}-{max(new_tokens)}")
    print(f"finance official (to 512 tokens or every row ended): {official_seconds:.3f} s")
    print(f"finance built-in (a row stops once settled): {built_in_seconds:.3f} s")
    return (f"finance: speedup={official_seconds / built_in_seconds:.2f} "
            f"same_accuracy={str(same_accuracy).lower()} same_predictions={str(same_predictions).lower()}")


if __name__ == "__main__":
    main()
