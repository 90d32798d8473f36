"""Finance evaluation: FPB, FiQA and TFNS sentiment, as the official FlowerTune tool asks,
decodes and scores them.

The official tool seeds `torch.manual_seed(2024)`; gives the tokenizer a `[PAD]` special token
(and the model an embedding row for it) when it has no pad token or pads with its end of
sequence; walks each benchmark's rows in batches of `--batch-size`, in data set order, padded on
the tokenizer's own side; and calls `model.generate(**batch, max_length=512,
eos_token_id=tokenizer.eos_token_id)`, so 512 tokens in all (prompt and padding included),
decoded as the model's `generation_config` says (greedy, sampling, a repetition penalty...).
It scores the decoded text after the first `Answer: `. Here, by default, each row gets the
official prediction:

- greedy decoding that is a plain argmax: rows are batched by length and each stops as soon
  as nothing it could still write would change its score (the end of sequence, a second
  `Answer: `, or `positive` already in its answer) and leaves its batch. Each row is continued
  as its official batch continues it: with left padding, as it is continued alone; with right
  padding, a prompt shorter than its batch's longest is continued as `generate` continues it
  after its padding (the first new token read at a pad token, the new tokens at positions 1,
  2, ..., as `generate` counts them there). So the predictions are the same;
- other greedy decoding (a repetition penalty...): the official batches and `generate` call,
  with a stopping criterion that ends each row once its score is settled (the other rows of
  its batch are computed as before);
- sampling, beam search and the other ways of decoding: the official batches and call,
  unchanged, seeded as officially (before the model loads). Sampled predictions are the
  official ones only where the same random numbers are drawn (same device, software, batch
  size and benchmark order): a warning says so.

`--left-padding` pads every batch on the left instead, as a decoder-only model needs: with a
tokenizer that pads on the right, the official tool continues a batch's shorter prompts after
their padding, and these predictions differ from it (a warning says so). A batch with a prompt
of 512 tokens or more stops the official tool with an error; here its rows get one new token
each, and a warning names them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import datasets
import torch
from tqdm.auto import tqdm
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation import GenerationMode

from . import text_tasks
from .data import Record, load_split, read_generations
from .engine import greedy_until_settled, is_plain_greedy
from .text_tasks import DatasetTasks, Task, add_quantization_argument, evaluate_tasks

ANSWER_MARKER = "Answer: "
MAX_LENGTH = 512  # the official `generate(max_length=512)`: prompt, padding and answer
TEST_FRACTION, SPLIT_SEED = 0.25, 42  # the official `train_test_split(0.25, seed=42)`
SENTIMENT_CHOICES = "Please choose an answer from {negative/neutral/positive}."
FPB_LABELS = {0: "negative", 1: "neutral", 2: "positive"}
TFNS_LABELS = {0: "negative", 1: "positive", 2: "neutral"}
OFFICIAL_SEED = 2024  # the official `torch.manual_seed(2024)`
PAD_TOKEN = "[PAD]"  # the pad token the official tool adds
SAMPLING_MODES = (GenerationMode.SAMPLE, GenerationMode.BEAM_SAMPLE)

Row = Mapping[str, Any]


def sentiment_instruction(kind: str) -> str:
    """The official instruction, about a `news` text or a `tweet`."""
    return f"What is the sentiment of this {kind}? {SENTIMENT_CHOICES}"


def finance_prompt(instruction: str, text: str) -> str:
    """`Instruction: ...`, `Input: ...` (when there is a text) and the `Answer: ` cue."""
    input_line = f"Input: {text}\n" if text else ""
    return f"Instruction: {instruction}\n{input_line}{ANSWER_MARKER}"


def fiqa_label(score: float) -> str:
    """FiQA's gold from `sentiment_score`: below -0.1 negative, below 0.1 neutral, else positive."""
    return "negative" if score < -0.1 else "neutral" if score < 0.1 else "positive"


def fpb_example(row: Row) -> Record:
    return {"prompt": finance_prompt(sentiment_instruction("news"), row["sentence"]),
            "gold": FPB_LABELS[int(row["label"])]}


def fiqa_example(row: Row) -> Record:
    kind = "tweet" if row["format"] == "post" else "news"
    return {"prompt": finance_prompt(sentiment_instruction(kind), row["sentence"]),
            "gold": fiqa_label(float(row["sentiment_score"]))}


def tfns_example(row: Row) -> Record:
    return {"prompt": finance_prompt(sentiment_instruction("tweet"), row["text"]),
            "gold": TFNS_LABELS[int(row["label"])]}


def official_test_part(rows: datasets.Dataset) -> datasets.Dataset:
    """The 25% that the official tool evaluates: `train_test_split(0.25, seed=42)["test"]`."""
    return rows.train_test_split(TEST_FRACTION, seed=SPLIT_SEED)["test"]


@dataclass(frozen=True)
class FinanceBenchmark:
    """Where a benchmark's rows live and how the official tool picks and asks them."""

    hub_id: str
    hub_config: str | None
    splits: tuple[str, ...]  # concatenated in this order
    take_test_part: bool
    example: Callable[[Row], Record]


BENCHMARKS: dict[str, FinanceBenchmark] = {
    "fpb": FinanceBenchmark(
        "takala/financial_phrasebank", "sentences_50agree", ("train",), True, fpb_example
    ),
    "fiqa": FinanceBenchmark("pauri32/fiqa-2018", None, ("train", "validation", "test"), True, fiqa_example),
    "tfns": FinanceBenchmark("zeroshot/twitter-financial-news-sentiment", None, ("validation",), False,
                             tfns_example),
}
DATASETS = tuple(BENCHMARKS)
# what --data-dir holds: <dir>/<file>.{jsonl,json,parquet}
DATA_FILES = tuple(f"{name}/{split}" for name, benchmark in BENCHMARKS.items() for split in benchmark.splits)
LEADERBOARD_TASKS = DATASETS  # averaged by the leaderboard, in the order of its columns


def local_splits(name: str, splits: tuple[str, ...], data_dir: Path | None) -> tuple[str, ...]:
    """The splits to read: all from the hub; from a local copy, those it holds (the others are
    named in a warning; with none, the first one's loading error names the files looked for)."""
    if data_dir is None:
        return splits
    present = tuple(split for split in splits if any((Path(data_dir) / name).glob(f"{split}.*")))
    if present and len(present) < len(splits):
        missing = ", ".join(split for split in splits if split not in present)
        print(f"warning: --data-dir holds no {missing} split of {name}; using {', '.join(present)}",
              file=sys.stderr)
    return present or splits[:1]


def load_examples(name: str, data_dir: Path | None) -> list[Record]:
    """The rows the official tool evaluates, as prompts and gold labels."""
    benchmark = BENCHMARKS[name]
    rows = datasets.concatenate_datasets([
        load_split(benchmark.hub_id, benchmark.hub_config, split, data_dir, name)
        for split in local_splits(name, benchmark.splits, data_dir)
    ])
    if benchmark.take_test_part:
        rows = official_test_part(rows)
    return [benchmark.example(row) for row in rows]


def answer_of(decoded: str | None) -> str | None:
    """The official answer: the decoded text after the first `Answer: `, up to any next one."""
    parts = (decoded or "").split(ANSWER_MARKER)
    return parts[1] if len(parts) > 1 else None


def fold_sentiment(text: str | None) -> str:
    """positive if it says positive, else negative if it says negative, else neutral."""
    text = text or ""
    if "positive" in text or "Positive" in text:
        return "positive"
    if "negative" in text or "Negative" in text:
        return "negative"
    return "neutral"


def is_settled(decoded: str) -> bool:
    """Whether no text appended to `decoded` could change its folded answer."""
    return decoded.count(ANSWER_MARKER) >= 2 or fold_sentiment(answer_of(decoded)) == "positive"


def padded_widths(token_rows: Sequence[Sequence[int]], batch_size: int) -> list[int]:
    """Per row, the width the official tool pads it to: its batch's longest prompt.

    The official tool walks the rows in batches of `batch_size` in data set order and pads
    each batch to its longest prompt.
    """
    widths = []
    for start in range(0, len(token_rows), batch_size):
        batch = token_rows[start : start + batch_size]
        widths += [max(len(row) for row in batch)] * len(batch)
    return widths


def official_limits(token_rows: Sequence[Sequence[int]], batch_size: int) -> list[int]:
    """Per row, the new tokens the official tool allows: 512 less its batch's padded length
    (`generate` makes at least one token)."""
    return [max(1, MAX_LENGTH - width) for width in padded_widths(token_rows, batch_size)]


def decodes_by_argmax(model) -> bool:
    """Whether the model's `generate` decodes greedily, each token the argmax of the logits."""
    config = model.generation_config
    return (config.get_generation_mode() == GenerationMode.GREEDY_SEARCH and config.max_new_tokens is None
            and is_plain_greedy(model))


def prepare_as_officially(model, tokenizer, left_padding: bool = False) -> None:
    """What the official tool does once, after loading, before its first answer: the `[PAD]`
    token when the tokenizer has none or pads with its end of sequence. Warns where these
    predictions are not, or may not be, the official ones."""
    if not tokenizer.pad_token or tokenizer.pad_token_id == tokenizer.eos_token_id:
        tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
        model.resize_token_embeddings(len(tokenizer))
    if tokenizer.padding_side == "right":
        if left_padding:
            warn("--left-padding: the tokenizer pads on the right, and so does the official tool, which "
                 "answers the shorter prompts of a batch after their padding: these predictions differ "
                 "from the official ones (the leaderboard's)")
        else:
            warn("the tokenizer pads on the right, and so does the official tool (the leaderboard's "
                 "numbers): the shorter prompts of a batch are answered after their padding, here too; "
                 "--left-padding pads on the left instead, as a decoder-only model needs")
    config = model.generation_config
    if config.get_generation_mode() in SAMPLING_MODES:
        settings = ", ".join(f"{name}={getattr(config, name)}" for name in ("temperature", "top_p", "top_k"))
        warn(f"the model's generation_config samples ({settings}), and so does the official tool: the "
             f"predictions are the official ones only where the same random numbers are drawn (seed "
             f"{OFFICIAL_SEED}, set before the model loads; the same device, software, --batch-size and "
             "--datasets order), so they may differ from the leaderboard's")


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def warn_of_long_prompts(name: str, token_rows: Sequence[Sequence[int]], batch_size: int) -> None:
    """Name the rows whose prompt has 512 tokens or more: the official tool stops at their batch."""
    rows = [row for row, tokens in enumerate(token_rows) if len(tokens) >= MAX_LENGTH]
    if not rows:
        return
    starts = sorted({row - row % batch_size for row in rows})
    batches = ", ".join(f"{start}-{min(start + batch_size, len(token_rows)) - 1}" for start in starts)
    warn(f"{name}: row(s) {', '.join(map(str, rows))} have prompts of {MAX_LENGTH} tokens or more, which "
         f"stop the official tool with an error (generate's max_length is {MAX_LENGTH}); here each row of "
         f"their batches (rows {batches}) gets one new token")


class SettledRows(StoppingCriteria):
    """Ends each row of a `generate` batch once its score is settled, and notes its length then."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.ends: dict[int, int] = {}

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        for index, row in enumerate(input_ids.tolist()):
            if index not in self.ends and is_settled(self.tokenizer.decode(row, skip_special_tokens=True)):
                self.ends[index] = len(row)
        return torch.tensor([index in self.ends for index in range(len(input_ids))], device=input_ids.device)


def official_decoding(model, tokenizer, prompts: Sequence[str], batch_size: int, padding_side: str,
                      description: str) -> list[str]:
    """Each prompt's decoded row as the official batches and `generate` call give it; with greedy
    decoding, a row ends once its score is settled (other decoding runs unchanged)."""
    stop_settled = model.generation_config.get_generation_mode() == GenerationMode.GREEDY_SEARCH
    outputs = []
    for start in tqdm(range(0, len(prompts), batch_size), desc=description, unit="batch"):
        batch = tokenizer(list(prompts[start : start + batch_size]), return_tensors="pt", padding=True,
                          return_token_type_ids=False, padding_side=padding_side).to(model.device)
        width = batch["input_ids"].shape[1]
        length = {"max_length": MAX_LENGTH} if width < MAX_LENGTH else {"max_new_tokens": 1}
        settled = SettledRows(tokenizer)
        criteria = {"stopping_criteria": StoppingCriteriaList([settled])} if stop_settled else {}
        with torch.inference_mode():
            rows = model.generate(**batch, **length, eos_token_id=tokenizer.eos_token_id, **criteria)
        for index, row in enumerate(rows.tolist()):
            outputs.append(tokenizer.decode(row[: settled.ends.get(index)], skip_special_tokens=True))
    return outputs


def right_padded_rows(token_rows: Sequence[Sequence[int]], batch_size: int) -> set[int]:
    """The rows that the official batches pad on the right: those shorter than their batch's
    longest prompt."""
    widths = padded_widths(token_rows, batch_size)
    return {row for row, width in enumerate(widths) if len(token_rows[row]) < width}


def settled_decoding(model, tokenizer, token_rows: Sequence[Sequence[int]], batch_size: int,
                     padding_side: str, description: str) -> list[str]:
    """Each row decoded greedily until its score is settled, in batches by length; with right
    padding, a row that its official batch pads continues as `generate` continues it there."""
    def decoded(row: int, new_tokens: Sequence[int]) -> str:
        return tokenizer.decode([*token_rows[row], *new_tokens], skip_special_tokens=True)

    new_tokens = greedy_until_settled(
        model, tokenizer, token_rows, official_limits(token_rows, batch_size), batch_size,
        lambda row, tokens: is_settled(decoded(row, tokens)), description,
        right_padded=right_padded_rows(token_rows, batch_size) if padding_side == "right" else (),
    )
    return [decoded(row, tokens) for row, tokens in enumerate(new_tokens)]


def answer_examples(
    model, tokenizer, examples: Sequence[Record], batch_size: int, description: str,
    left_padding: bool = False,
) -> list[Record]:
    """The generation records: each example with the decoded text, its answer and both labels.

    The model and tokenizer are those `prepare_as_officially` prepared.
    """
    prompts = [example["prompt"] for example in examples]
    token_rows = tokenizer(prompts)["input_ids"]
    warn_of_long_prompts(description, token_rows, batch_size)
    padding_side = "left" if left_padding else tokenizer.padding_side
    if decodes_by_argmax(model):
        outputs = settled_decoding(model, tokenizer, token_rows, batch_size, padding_side, description)
    else:
        outputs = official_decoding(model, tokenizer, prompts, batch_size, padding_side, description)
    records = []
    for example, output in zip(examples, outputs, strict=True):
        answer = answer_of(output)
        records.append({
            **example, "output": output, "answer": answer,
            "new_target": fold_sentiment(example["gold"]), "new_out": fold_sentiment(answer),
        })
    return records


def prediction(record: Record) -> str:
    """The folded answer of a record: ours (`output`, the decoded text) or the official's (`new_out`)."""
    if "output" in record:
        return fold_sentiment(answer_of(record["output"]))
    return fold_sentiment(record["new_out"])


def accuracy(records: Sequence[Record]) -> float:
    """Share of records whose folded answer equals their folded gold (`gold` or `new_target`)."""
    if not records:
        raise ValueError("there are no generations to score")
    golds = [
        fold_sentiment(record["gold"] if "gold" in record else record["new_target"]) for record in records
    ]
    return sum(prediction(record) == gold for record, gold in zip(records, golds, strict=True)) / len(records)


def task(name: str, left_padding: bool = False) -> Task:
    """One benchmark as a scored task."""
    return Task(name=name, load_examples=partial(load_examples, name),
                answer=partial(answer_examples, left_padding=left_padding), score=accuracy)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The Finance evaluation's own flags."""
    add_quantization_argument(parser)
    parser.add_argument(
        "--left-padding", action="store_true",
        help="pad each batch on the left, as a decoder-only model needs, instead of on the tokenizer's "
             "side as the official tool does (the leaderboard's predictions, the default); the two "
             "differ when the tokenizer pads on the right",
    )


def evaluate(args: argparse.Namespace, loaded: text_tasks.Loaded | None = None) -> dict[str, float]:
    """Answer, score and record every chosen benchmark (`loaded`: the sweep's model)."""
    torch.manual_seed(OFFICIAL_SEED)  # as the official tool, before loading the model
    return evaluate_tasks(args, [task(name, args.left_padding) for name in args.datasets], loaded,
                          prepare=partial(prepare_as_officially, left_padding=args.left_padding))


# What `sweep` and `submit` call besides `evaluate`: `--datasets` name the tasks.
_commands = DatasetTasks(DATASETS, task)
task_names, read_scores = _commands.task_names, _commands.read_scores
adapter_models = text_tasks.adapter_models  # the base model once, each adapter in turn


def score_generations(path: Path, dataset: str, args: argparse.Namespace) -> str:
    """Re-score a saved generation file of one benchmark (ours or the official tool's)."""
    return f"Accuracy: {accuracy(read_generations(path))}"
