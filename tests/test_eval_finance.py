"""The Finance evaluation (FPB, FiQA, TFNS) checked against the official tool's recipe, offline.

The expectations are written here from the official FlowerTune Finance evaluation, not taken
from the rendered code: its rows (`train_test_split(0.25, seed=42)`), prompts, label maps, its
seed and `[PAD]` token, its batches, tokenizer call and `generate` call (512 tokens in all, as the
model's generation config decodes), and its scoring of the text after the first `Answer: `.
"""

from __future__ import annotations

import json
import re
import types
from pathlib import Path

import datasets
import pytest
import torch

from testkit.benchmark_fixtures import FIQA_SPLITS, FPB_ROWS, TFNS_ROWS, write_finance_fixtures
from testkit.tiny_models import build_tiny_model, train_sentencepiece_style_tokenizer

from .test_eval import read_jsonl, write_generations

BENCHMARKS = ["fpb", "fiqa", "tfns"]
FPB_LABELS = {0: "negative", 1: "neutral", 2: "positive"}
TFNS_LABELS = {0: "negative", 1: "positive", 2: "neutral"}
MARKER = "Answer: "
# The official budget is 512 tokens in all; the tests use a smaller one so that the reference
# (every row decoded to the end of that budget) stays fast.
TEST_MAX_LENGTH = 64


# --- The official recipe, written out independently ---

def official_prompt(kind: str, text: str) -> str:
    return (f"Instruction: What is the sentiment of this {kind}? Please choose an answer from "
            f"{{negative/neutral/positive}}.\nInput: {text}\nAnswer: ")


def official_fiqa_label(score: float) -> str:
    if score < -0.1:
        return "negative"
    if score < 0.1:
        return "neutral"
    return "positive"


def official_rows(name: str, data_dir: Path) -> list[tuple[str, str]]:
    """(prompt, gold) of the rows the official tool evaluates, read with `datasets` from the files."""
    def split(benchmark: str, part: str) -> datasets.Dataset:
        return datasets.load_dataset("json", data_files=str(data_dir / benchmark / f"{part}.jsonl"),
                                     split="train")

    if name == "fpb":
        rows = split("fpb", "train").train_test_split(0.25, seed=42)["test"]
        return [(official_prompt("news", row["sentence"]), FPB_LABELS[row["label"]]) for row in rows]
    if name == "fiqa":
        parts = [split("fiqa", part) for part in ("train", "validation", "test")]
        rows = datasets.concatenate_datasets(parts).train_test_split(0.25, seed=42)["test"]
        return [(official_prompt("tweet" if row["format"] == "post" else "news", row["sentence"]),
                 official_fiqa_label(row["sentiment_score"])) for row in rows]
    rows = split("tfns", "validation")
    return [(official_prompt("tweet", row["text"]), TFNS_LABELS[row["label"]]) for row in rows]


def change_target(text: str) -> str:
    """The official fold of an answer (and of a gold label)."""
    if "positive" in text or "Positive" in text:
        return "positive"
    if "negative" in text or "Negative" in text:
        return "negative"
    return "neutral"


def official_prediction(decoded: str) -> str:
    """`change_target(decoded.split("Answer: ")[1])`; a text without `Answer: ` has no answer (neutral)."""
    parts = decoded.split(MARKER)
    return change_target(parts[1]) if len(parts) > 1 else "neutral"


def official_accuracy(predictions: list[str], golds: list[str]) -> float:
    return sum(p == change_target(g) for p, g in zip(predictions, golds, strict=True)) / len(golds)


# --- Fixtures ---

@pytest.fixture(scope="module")
def package(rendered_challenge):
    return rendered_challenge("finance")


@pytest.fixture(scope="module")
def finance(package):
    return package("evaluation.finance")


@pytest.fixture(scope="module")
def engine(package):
    return package("evaluation.engine")


@pytest.fixture(scope="module")
def evaluation(package):
    return package("eval")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_finance_fixtures(tmp_path_factory.mktemp("finance-data"))


@pytest.fixture(scope="module")
def answering_model(finance, data_dir, tmp_path_factory):
    """A tiny llama trained for a moment to continue the fixture prompts with answers, so that its
    greedy answers settle in every way the early stop knows about, at different steps, and most go
    on after that: `positive`, a second `Answer: `, the end of sequence, and `negative` then
    `positive` (which must not stop at `negative`). Saved (with its tokenizer) as a model folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    examples = [example for name in BENCHMARKS for example in finance.load_examples(name, data_dir)]
    answers = {"positive": ["positive, as sales rose", "Positive."],
               "negative": ["negative", "negative, not positive at all"],
               "neutral": ["neutral\nAnswer: positive, it seems"]}
    completions = [answers[example["gold"]][index % len(answers[example["gold"]])]
                   for index, example in enumerate(examples)]
    tokenizer = train_sentencepiece_style_tokenizer(
        [example["prompt"] + completion for example, completion in zip(examples, completions, strict=True)],
        vocab_size=1024,
    )
    model_dir = build_tiny_model("llama", tmp_path_factory.mktemp("answering-model"), tokenizer=tokenizer)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    # the prompt's tokens, then the answer's: as the model sees them when it answers
    rows = [tokenizer(example["prompt"])["input_ids"]
            + tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
            for example, completion in zip(examples, completions, strict=True)]
    width = max(map(len, rows))
    input_ids = torch.tensor([row + [tokenizer.pad_token_id] * (width - len(row)) for row in rows])
    attention_mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows])
    labels = input_ids.masked_fill(attention_mask == 0, -100)
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(40):
        model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    model.save_pretrained(model_dir)
    return model_dir


def generate_alone(model, row: list[int], limit: int, end_token: int) -> list[int]:
    """`generate`'s greedy new tokens for one token row, up to `limit` or `end_token` (left out)."""
    with torch.inference_mode():
        output = model.generate(
            torch.tensor([row]), attention_mask=torch.ones(1, len(row), dtype=torch.long),
            max_new_tokens=limit, do_sample=False, eos_token_id=end_token, pad_token_id=end_token,
        )
    tokens = output[0, len(row) :].tolist()
    return tokens[: tokens.index(end_token)] if end_token in tokens else tokens


def official_setup(model, tokenizer) -> None:
    """The official eval.py before its first answer: the seed, then a `[PAD]` special token (and an
    embedding row for it) when the tokenizer has no pad token or pads with its end of sequence."""
    torch.manual_seed(2024)
    if not tokenizer.pad_token or tokenizer.pad_token_id == tokenizer.eos_token_id:
        tokenizer.add_special_tokens({"pad_token": "[PAD]"})
        model.resize_token_embeddings(len(tokenizer))


def official_inference(model, tokenizer, prompts: list[str], batch_size: int,
                       max_length: int = TEST_MAX_LENGTH) -> list[str]:
    """The official benchmarks.py `inference`, to the decoded rows: its batches, its tokenizer and
    `generate` calls and its decoding (with the tests' token budget)."""
    last_batch = len(prompts) % batch_size
    total_steps = len(prompts) // batch_size + 1
    decoded = []
    for i in range(total_steps):
        idx_s = i * batch_size
        tmp_context = (prompts[idx_s : idx_s + last_batch] if i == total_steps - 1
                       else prompts[idx_s : idx_s + batch_size])
        if tmp_context:
            tokens = tokenizer(tmp_context, return_tensors="pt", padding=True, max_length=512,
                               return_token_type_ids=False)
            with torch.no_grad():
                res = model.generate(**tokens, max_length=max_length, eos_token_id=tokenizer.eos_token_id)
            decoded += [tokenizer.decode(row, skip_special_tokens=True) for row in res]
    return decoded


def official_out_text(decoded: str) -> str:
    """`o.split("Answer: ")[1] if len(o.split("Answer: ")) > 1 else "None"`."""
    return decoded.split(MARKER)[1] if len(decoded.split(MARKER)) > 1 else "None"


# How each case changes the answering model as it is loaded: the tokenizer's padding side, its
# pad token, and the model's generation config (as the model folder's files would say).
DECODING_CASES = {
    "right padding": {},
    "left padding": {"padding_side": "left"},
    "no pad token": {"pad_token": None},
    "pad token is the end of sequence": {"pad_token": "</s>", "padding_side": "left"},
    "repetition penalty": {"generation": {"repetition_penalty": 1.3}},
    "repetition penalty, left padding": {"padding_side": "left", "generation": {"repetition_penalty": 1.3}},
    "sampling": {"generation": {"do_sample": True, "temperature": 0.8}},
}


@pytest.fixture(scope="module")
def load_case(engine, answering_model):
    """Factory: the answering model and its tokenizer, loaded as the evaluation loads them (or as
    the official tool does, `official=True`), changed as a `DECODING_CASES` case says."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def load(case: str, official: bool = False):
        changes = DECODING_CASES[case]
        if official:
            model = AutoModelForCausalLM.from_pretrained(answering_model).eval()
            tokenizer = AutoTokenizer.from_pretrained(answering_model)
        else:
            model = engine.load_model(str(answering_model), None, "none")
            tokenizer = engine.load_tokenizer(str(answering_model))
        if "padding_side" in changes:
            tokenizer.padding_side = changes["padding_side"]
        if "pad_token" in changes:
            tokenizer.pad_token = changes["pad_token"]
        for name, value in changes.get("generation", {}).items():
            setattr(model.generation_config, name, value)
        return model, tokenizer

    return load


@pytest.fixture(scope="module")
def official_answers(load_case, finance, data_dir):
    """Factory: the official tool's decoded rows of every benchmark (in --datasets order) for a
    case and batch size, each computed once."""
    done: dict = {}

    def answers(case: str, batch_size: int) -> dict[str, list[str]]:
        if (case, batch_size) not in done:
            model, tokenizer = load_case(case, official=True)
            official_setup(model, tokenizer)
            prompts = {name: [example["prompt"] for example in finance.load_examples(name, data_dir)]
                       for name in BENCHMARKS}
            done[case, batch_size] = {name: official_inference(model, tokenizer, prompts[name], batch_size)
                                      for name in BENCHMARKS}
        return done[case, batch_size]

    return answers


# --- Rows, prompts and golds ---

def test_the_eval_command_dispatches_to_the_finance_evaluation(evaluation, finance):
    assert evaluation.challenge_evaluation() is finance
    args = evaluation.build_parser(finance).parse_args([])
    assert args.datasets == BENCHMARKS and args.quantization == "4" and args.batch_size == 16
    assert args.left_padding is False  # the official padding side (the tokenizer's) by default


def test_prompts_are_the_official_ones(finance):
    assert finance.fpb_example({"sentence": "Net sales rose 12 % .", "label": 2}) == {
        "prompt": "Instruction: What is the sentiment of this news? Please choose an answer from "
                  "{negative/neutral/positive}.\nInput: Net sales rose 12 % .\nAnswer: ",
        "gold": "positive",
    }
    assert finance.tfns_example({"text": "$XYZ up 5%", "label": 0})["prompt"] == (
        "Instruction: What is the sentiment of this tweet? Please choose an answer from "
        "{negative/neutral/positive}.\nInput: $XYZ up 5%\nAnswer: "
    )
    post, headline = FIQA_SPLITS["train"][0], FIQA_SPLITS["train"][1]
    assert (post["format"], headline["format"]) == ("post", "headline")
    assert finance.fiqa_example(post)["prompt"] == official_prompt("tweet", post["sentence"])
    assert finance.fiqa_example(headline)["prompt"] == official_prompt("news", headline["sentence"])


@pytest.mark.parametrize(("label", "fpb", "tfns"), [(0, "negative", "negative"), (1, "neutral", "positive"),
                                                    (2, "positive", "neutral")])
def test_fpb_and_tfns_label_maps_differ_as_officially(finance, label, fpb, tfns):
    assert finance.fpb_example({"sentence": "s", "label": label})["gold"] == fpb
    assert finance.tfns_example({"text": "t", "label": label})["gold"] == tfns


@pytest.mark.parametrize(("score", "gold"), [
    (-0.72, "negative"), (-0.1000001, "negative"), (-0.1, "neutral"), (0.0, "neutral"), (0.0999, "neutral"),
    (0.1, "positive"), (0.81, "positive"),
])
def test_fiqa_gold_comes_from_the_sentiment_score_not_the_label(finance, score, gold):
    row = {**FIQA_SPLITS["train"][0], "sentiment_score": score}
    for label in (0, 1, 2):
        assert finance.fiqa_example({**row, "label": label})["gold"] == gold == official_fiqa_label(score)


@pytest.mark.parametrize("name", BENCHMARKS)
def test_each_benchmark_evaluates_the_official_rows(finance, data_dir, name):
    examples = finance.load_examples(name, data_dir)
    expected = official_rows(name, data_dir)
    assert [(example["prompt"], example["gold"]) for example in examples] == expected
    sizes = {"fpb": len(FPB_ROWS) // 4, "fiqa": sum(map(len, FIQA_SPLITS.values())) // 4,
             "tfns": len(TFNS_ROWS)}
    assert len(examples) == sizes[name]
    assert {gold for _, gold in expected} == {"negative", "neutral", "positive"}


def test_fiqa_concatenates_train_validation_and_test_before_splitting(finance, data_dir):
    sentences = {example["prompt"].split("Input: ")[1].split("\n")[0]
                 for example in finance.load_examples("fiqa", data_dir)}
    origins = {split for split, rows in FIQA_SPLITS.items() for row in rows if row["sentence"] in sentences}
    assert len(origins) >= 2, "the test part should mix rows of several splits"


def test_hub_ids_are_the_protocols(finance, package, monkeypatch):
    calls = []

    def fake_load_dataset(*args, **kwargs):
        # a keyword given as None is one not given
        calls.append((args, {key: value for key, value in kwargs.items() if value is not None}))
        return datasets.Dataset.from_list(
            {"fpb": FPB_ROWS, "fiqa": FIQA_SPLITS["train"], "tfns": TFNS_ROWS}[current]
        )

    monkeypatch.setattr(package("evaluation.data").datasets, "load_dataset", fake_load_dataset)
    for current in BENCHMARKS:
        finance.load_examples(current, None)
    assert calls == [
        (("takala/financial_phrasebank", "sentences_50agree"), {"split": "train"}),
        (("pauri32/fiqa-2018", None), {"split": "train"}),
        (("pauri32/fiqa-2018", None), {"split": "validation"}),
        (("pauri32/fiqa-2018", None), {"split": "test"}),
        (("zeroshot/twitter-financial-news-sentiment", None), {"split": "validation"}),
    ]


# --- Scoring ---

PROMPT = official_prompt("news", "Profit warnings are not positive news .")
# (decoded text as the official tool decodes a row: prompt and answer, prediction)
AWKWARD_OUTPUTS = [
    (PROMPT + "positive", "positive"),
    (PROMPT + "Positive.", "positive"),
    (PROMPT + "negative... no, positive", "positive"),  # positive is looked for first
    (PROMPT + "Negative", "negative"),
    (PROMPT + "NEGATIVE", "neutral"),  # only `negative` and `Negative` count
    (PROMPT + "nonnegative", "negative"),  # substrings count
    (PROMPT + "neutral\nAnswer: positive", "neutral"),  # text after a second `Answer: ` is ignored
    (PROMPT + "negative Answer: Positive Answer: positive", "negative"),
    (PROMPT + "", "neutral"),
    (PROMPT + "\n\nI cannot tell.", "neutral"),
    # the prompt's own `positive` is before the first `Answer: `: not part of the answer
    (PROMPT + "negative", "negative"),
    # no `Answer: ` at all (the marker's space lost in decoding): no answer, neutral
    (PROMPT.rstrip() + "positive", "neutral"),
    ("positive", "neutral"),
]


@pytest.mark.parametrize(("decoded", "expected"), AWKWARD_OUTPUTS)
def test_awkward_outputs_score_as_the_official_change_target(finance, decoded, expected):
    assert official_prediction(decoded) == expected
    assert finance.prediction({"prompt": PROMPT, "gold": "neutral", "output": decoded}) == expected


def ours(records: list[tuple[str, str]]) -> list[dict]:
    return [{"prompt": PROMPT, "gold": gold, "output": decoded} for decoded, gold in records]


def official_file_records(records: list[tuple[str, str]]) -> list[dict]:
    """Rows as the official tool saves them: `context`, `new_target`, `new_out`."""
    return [{"context": PROMPT, "new_target": change_target(gold), "new_out": official_prediction(decoded)}
            for decoded, gold in records]


@pytest.mark.parametrize("writer", [ours, official_file_records])
@pytest.mark.parametrize("form", ["json-lines", "json-array"])
def test_rescoring_saved_generations_gives_the_official_accuracy(evaluation, tmp_path, capsys, writer, form):
    golds = ["positive", "neutral", "negative", "neutral", "negative", "neutral"] * 3
    records = [(decoded, gold) for (decoded, _), gold in zip(AWKWARD_OUTPUTS, golds, strict=False)]
    expected = official_accuracy([official_prediction(decoded) for decoded, _ in records],
                                 [gold for _, gold in records])
    assert 0 < expected < 1
    saved = write_generations(tmp_path / "generation_fpb_fl.jsonl", writer(records), form)
    evaluation.main(["--score-generations", str(saved), "--datasets", "fpb"])
    assert capsys.readouterr().out.strip() == f"Accuracy: {expected}"


SETTLED = [PROMPT + "positive", PROMPT + "I'd say Positive", PROMPT + "neutral\nAnswer: ",
           PROMPT + "negative Answer: x", PROMPT + "x Answer: y Answer: z"]
UNSETTLED = [PROMPT, PROMPT + "negative", PROMPT + "neutral", PROMPT + "neutral\nAnswer:", PROMPT + "posi",
             PROMPT.rstrip()]
SUFFIXES = ["", "positive", " Positive", "negative", "\nAnswer: positive", " Answer: negative", "tive", " "]


@pytest.mark.parametrize("text", SETTLED)
def test_a_settled_answer_keeps_its_prediction_whatever_follows(finance, text):
    assert finance.is_settled(text)
    assert len({official_prediction(text + suffix) for suffix in SUFFIXES}) == 1


@pytest.mark.parametrize("text", UNSETTLED)
def test_an_unsettled_answer_could_still_change(finance, text):
    assert not finance.is_settled(text)
    assert len({official_prediction(text + suffix) for suffix in SUFFIXES}) > 1


# --- Decoding: rows that stop early answer as rows decoded to the official limit ---

def test_rows_leave_the_batch_at_their_own_step_with_generates_tokens(engine, tiny_model, finance, data_dir):
    """`greedy_until_settled` on rows of different lengths in batches of 3, each row with its own
    limit, settling after its own number of tokens or never, some ending earlier at the end of
    sequence: each row gets `generate`'s tokens for it alone, up to where it stopped."""
    model = engine.load_model(str(tiny_model("llama")), None, "none")
    tokenizer = engine.load_tokenizer(str(tiny_model("llama")))
    prompts = [example["prompt"] for name in BENCHMARKS for example in finance.load_examples(name, data_dir)]
    token_rows = tokenizer(prompts[:9])["input_ids"]
    assert len({len(row) for row in token_rows}) > 3
    limits = [4, 7, 9, 6, 8, 5, 9, 7, 3]
    settle_after = [1, 3, None, 2, 5, None, 3, 1, None]
    # The random model never writes its end of sequence: call "end of sequence" the token it
    # writes (after its first) in the most rows, so that some rows end at it.
    free = [generate_alone(model, row, limit, tokenizer.eos_token_id)
            for row, limit in zip(token_rows, limits, strict=True)]
    candidates = {token for tokens in free for token in tokens[1:]}
    end = max(sorted(candidates), key=lambda token: sum(token in tokens[1:] for tokens in free))
    ending = types.SimpleNamespace(eos_token_id=end, pad_token_id=tokenizer.pad_token_id)
    calls = []

    def settled(row: int, new_tokens: list[int]) -> bool:
        calls.append((row, list(new_tokens)))
        return settle_after[row] is not None and len(new_tokens) >= settle_after[row]

    answers = engine.greedy_until_settled(model, ending, token_rows, limits, 3, settled)
    how = []
    for row, tokens in enumerate(token_rows):
        alone = generate_alone(model, tokens, limits[row], end)
        stop = settle_after[row] or limits[row]
        assert answers[row] == alone[:stop], f"row {row}"
        how.append("limit" if len(answers[row]) == limits[row] else "end" if len(alone) < stop else "settled")
    assert {"limit", "end", "settled"} <= set(how), how
    assert len({len(answer) for answer in answers}) >= 4
    # `settled` saw each row's own tokens so far, one more each step, never the end token
    for row, new_tokens in calls:
        assert new_tokens == answers[row][: len(new_tokens)]


@pytest.mark.parametrize("wrong_guesses", [False, True])
def test_rows_that_repeat_themselves_take_several_tokens_a_pass_and_get_generates_tokens(
    engine, tiny_model, finance, data_dir, monkeypatch, wrong_guesses
):
    """Rows whose text repeats itself are guessed ahead from their own tokens, several tokens
    checked in one pass, each row keeping as many as its greedy tokens confirm: each row still
    gets `generate`'s tokens for it alone, also where guesses are wrong (here made wrong on
    purpose: their second token changed)."""
    model = engine.load_model(str(tiny_model("llama")), None, "none")
    tokenizer = engine.load_tokenizer(str(tiny_model("llama")))
    prompts = [example["prompt"] for name in BENCHMARKS for example in finance.load_examples(name, data_dir)]
    token_rows = tokenizer(prompts[:6])["input_ids"]
    limits = [40, 60, 25, 60, 50, 33]
    passes = []  # (each row's guesses, each row's chosen tokens) of each pass that checks guesses
    guess, lookahead_step = engine.RowText.guess, engine.lookahead_step

    def made_wrong(text, most):
        guessed = guess(text, most)
        if wrong_guesses and len(guessed) > 1:
            guessed[1] = (guessed[1] + 1) % tokenizer.vocab_size
        return guessed

    def checked(model, decoding, guesses, pad):
        after, chosen, confirmed = lookahead_step(model, decoding, guesses, pad)
        # each row's next position counts the tokens it kept, whatever the others kept
        assert after.positions[:, 0].tolist() == after.attention.sum(-1).tolist()
        passes.append((guesses, chosen))
        return after, chosen, confirmed

    monkeypatch.setattr(engine.RowText, "guess", made_wrong)
    monkeypatch.setattr(engine, "lookahead_step", checked)
    never = tokenizer.vocab_size + 1  # no end of sequence: every row runs to its limit
    ending = types.SimpleNamespace(eos_token_id=never, pad_token_id=tokenizer.pad_token_id)
    answers = engine.greedy_until_settled(model, ending, token_rows, limits, 3, lambda row, tokens: False)
    for row, tokens in enumerate(token_rows):
        assert answers[row] == generate_alone(model, tokens, limits[row], never), f"row {row}"
    row_passes = [pair for guesses, chosen in passes for pair in zip(guesses, chosen, strict=True)]
    # rows of one pass keep different numbers of tokens
    assert any(len({len(tokens) for tokens in chosen}) > 1 for _, chosen in passes)
    if wrong_guesses:
        # some guesses thrown away
        assert any(len(tokens) <= len(guessed) for guessed, tokens in row_passes if guessed)
    else:
        guessed_rows = [tokens for guessed, tokens in row_passes if guessed]
        assert sum(map(len, guessed_rows)) > 2 * len(guessed_rows)  # over two tokens a pass


def answer_every_benchmark(finance, data_dir, model, tokenizer, batch_size, left_padding=False):
    """Our records of every benchmark, in --datasets order, seeded and prepared as a run is."""
    torch.manual_seed(2024)
    finance.prepare_as_officially(model, tokenizer, left_padding)
    return {name: finance.answer_examples(model, tokenizer, finance.load_examples(name, data_dir), batch_size,
                                          name, left_padding)
            for name in BENCHMARKS}


@pytest.mark.parametrize(("case", "batch_size"), [
    *((case, 4) for case in DECODING_CASES), ("right padding", 32), ("left padding", 32),
])
def test_each_case_gives_the_official_predictions(finance, data_dir, load_case, official_answers, monkeypatch,
                                                  capsys, case, batch_size):
    """Whatever the tokenizer's padding side and pad token and the model's generation config, every
    row's prediction is the official one; greedy rows stop once settled (the fast way, which
    continues each row as its official batch does, on either padding side, wherever decoding is
    a plain argmax)."""
    monkeypatch.setattr(finance, "MAX_LENGTH", TEST_MAX_LENGTH)
    fast_calls = []
    original = finance.greedy_until_settled
    monkeypatch.setattr(finance, "greedy_until_settled",
                        lambda *args, **kwargs: fast_calls.append(1) or original(*args, **kwargs))
    model, tokenizer = load_case(case)
    records = answer_every_benchmark(finance, data_dir, model, tokenizer, batch_size)
    official = official_answers(case, batch_size)
    stopped_early = 0
    for name in BENCHMARKS:
        for row, (record, decoded) in enumerate(zip(records[name], official[name], strict=True)):
            assert record["new_out"] == change_target(official_out_text(decoded)), f"{name} row {row}"
            assert record["new_target"] == change_target(record["gold"])
            assert decoded.startswith(record["output"]), f"{name} row {row}"
            if record["output"] != decoded:
                assert finance.is_settled(record["output"])
                stopped_early += 1
        predictions = [change_target(official_out_text(decoded)) for decoded in official[name]]
        golds = [record["gold"] for record in records[name]]
        assert finance.accuracy(records[name]) == official_accuracy(predictions, golds)
    warnings = capsys.readouterr().err
    changes = DECODING_CASES[case]
    if changes.get("generation", {}).get("do_sample"):
        assert stopped_early == 0  # sampling runs as officially, to draw the same random numbers
        assert "samples" in warnings and "seed 2024" in warnings
    else:
        assert stopped_early >= 3
    uses_fast_way = "generation" not in changes
    assert bool(fast_calls) is uses_fast_way
    assert ("pads on the right" in warnings) is (tokenizer.padding_side == "right")


def test_a_run_seeds_as_the_official_tool_before_loading_the_model(evaluation, finance, monkeypatch):
    states = []
    monkeypatch.setattr(finance, "evaluate_tasks", lambda *args, **_: states.append(torch.get_rng_state()))
    torch.manual_seed(0)
    finance.evaluate(evaluation.build_parser(finance).parse_args(["--base-model-name-path", "unused"]))
    torch.manual_seed(2024)
    assert torch.equal(states[0], torch.get_rng_state())


def test_a_generation_config_that_changes_decoding_changes_the_official_answers(official_answers):
    """The cases above are not the same one: the penalty and the padding side change answers."""
    def texts(case):
        return [text for rows in official_answers(case, 4).values() for text in rows]

    assert texts("repetition penalty") != texts("right padding")
    assert texts("left padding") != texts("right padding")


@pytest.mark.parametrize("case", ["no pad token", "pad token is the end of sequence"])
def test_a_pad_token_is_added_as_the_official_tool_adds_it(finance, load_case, monkeypatch, case):
    """`[PAD]` becomes a special token with an embedding row, so a text holding `[PAD]` is
    tokenized (and answered) as in the official tool, where it is one token."""
    monkeypatch.setattr(finance, "MAX_LENGTH", TEST_MAX_LENGTH)
    model, tokenizer = load_case(case)
    text = finance.finance_prompt(finance.sentiment_instruction("news"), "Sales [PAD] rose")
    size = len(tokenizer)
    before = tokenizer(text)["input_ids"]
    torch.manual_seed(2024)
    finance.prepare_as_officially(model, tokenizer)
    official_model, official_tokenizer = load_case(case, official=True)
    official_setup(official_model, official_tokenizer)
    assert tokenizer.pad_token == "[PAD]" and len(tokenizer) == size + 1
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)
    assert torch.equal(model.get_input_embeddings().weight, official_model.get_input_embeddings().weight)
    ids = tokenizer(text)["input_ids"]
    assert ids == official_tokenizer(text)["input_ids"] != before
    assert ids.count(tokenizer.pad_token_id) == 1
    [record] = finance.answer_examples(model, tokenizer, [{"prompt": text, "gold": "positive"}], 4, "fpb")
    assert official_inference(official_model, official_tokenizer, [text], 4)[0].startswith(record["output"])


def test_left_padding_gives_the_left_padded_official_predictions_and_warns(
    finance, data_dir, load_case, official_answers, monkeypatch, capsys
):
    monkeypatch.setattr(finance, "MAX_LENGTH", TEST_MAX_LENGTH)
    model, tokenizer = load_case("right padding")
    records = answer_every_benchmark(finance, data_dir, model, tokenizer, 4, left_padding=True)
    assert "--left-padding: the tokenizer pads on the right" in capsys.readouterr().err
    left, right = official_answers("left padding", 4), official_answers("right padding", 4)
    for name in BENCHMARKS:
        for record, decoded in zip(records[name], left[name], strict=True):
            assert decoded.startswith(record["output"])
            assert record["new_out"] == change_target(official_out_text(decoded))
    assert left != right


def test_a_prompt_of_512_tokens_or_more_is_named_in_a_warning(finance, load_case, monkeypatch, capsys):
    """The official tool stops with an error at the batch of such a prompt; here its rows are
    answered with one new token each and a warning names the row and its batch."""
    monkeypatch.setattr(finance, "MAX_LENGTH", TEST_MAX_LENGTH)
    model, tokenizer = load_case("right padding")
    finance.prepare_as_officially(model, tokenizer)
    short = finance.finance_prompt(finance.sentiment_instruction("news"), "Sales rose")
    long = finance.finance_prompt(finance.sentiment_instruction("news"), "Sales rose again and again " * 12)
    assert len(tokenizer(long)["input_ids"]) >= TEST_MAX_LENGTH > len(tokenizer(short)["input_ids"])
    examples = [{"prompt": prompt, "gold": "positive"} for prompt in (short, short, short, long, short)]
    with pytest.raises(ValueError, match="max_length"):
        official_inference(model, tokenizer, [example["prompt"] for example in examples], 2)
    limits = []
    decode = finance.greedy_until_settled
    def spy(model, tokenizer, prompts, max_new_tokens, *args, **kwargs):
        limits.append(list(max_new_tokens))
        return decode(model, tokenizer, prompts, max_new_tokens, *args, **kwargs)

    monkeypatch.setattr(finance, "greedy_until_settled", spy)
    records = finance.answer_examples(model, tokenizer, examples, 2, "fpb")
    warning = capsys.readouterr().err
    assert "fpb: row(s) 3 have prompts of 64 tokens or more" in warning and "(rows 2-3)" in warning
    rest = TEST_MAX_LENGTH - len(tokenizer(short)["input_ids"])  # 512 in all, as officially
    assert limits == [[rest, rest, 1, 1, rest]]
    assert [record["prompt"] for record in records] == [example["prompt"] for example in examples]


def test_official_limits_are_512_less_each_batchs_longest_prompt(finance):
    rows = [[1] * 30, [1] * 50, [1] * 10, [1] * 20, [1] * 600]
    assert finance.official_limits(rows, 2) == [512 - 50, 512 - 50, 512 - 20, 512 - 20, 1]
    assert finance.official_limits(rows[:4], 16) == [512 - 50] * 4


# --- A whole run ---

@pytest.fixture(scope="module")
def penalised_model(answering_model, tmp_path_factory):
    """The answering model's folder with a repetition penalty in its generation_config.json."""
    import shutil

    folder = tmp_path_factory.mktemp("penalised") / "model"
    shutil.copytree(answering_model, folder)
    config = json.loads((folder / "generation_config.json").read_text())
    (folder / "generation_config.json").write_text(json.dumps({**config, "repetition_penalty": 1.3}))
    return folder


@pytest.fixture(scope="module")
def full_run(evaluation, finance, penalised_model, data_dir, tmp_path_factory):
    """A whole run on a model whose tokenizer pads on the right and whose generation config sets
    a repetition penalty."""
    output_dir = tmp_path_factory.mktemp("finance-run") / "benchmarks"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(finance, "MAX_LENGTH", TEST_MAX_LENGTH)
        evaluation.main([
            "--base-model-name-path", str(penalised_model), "--quantization", "none",
            "--data-dir", str(data_dir), "--datasets", "fpb,fiqa,tfns", "--batch-size", "4",
            "--run-name", "tiny", "--output-dir", str(output_dir),
        ])
    return output_dir


def test_full_run_writes_the_official_files_with_the_official_rows(full_run, data_dir):
    expected = {f"acc_{name}_tiny.txt" for name in BENCHMARKS}
    expected |= {f"generation_{name}_tiny.jsonl" for name in BENCHMARKS} | {"summary_tiny.json"}
    assert {path.name for path in full_run.iterdir()} == expected
    summary = json.loads((full_run / "summary_tiny.json").read_text())
    for name in BENCHMARKS:
        records = read_jsonl(full_run / f"generation_{name}_tiny.jsonl")
        assert [(record["prompt"], record["gold"]) for record in records] == official_rows(name, data_dir)
        text = (full_run / f"acc_{name}_tiny.txt").read_text()
        assert re.fullmatch(r"Accuracy: [0-9.e-]+\. ", text)
        accuracy = official_accuracy([official_prediction(record["output"]) for record in records],
                                     [record["gold"] for record in records])
        assert text == f"Accuracy: {accuracy}. "
        assert summary["accuracy"][name] == accuracy and summary["rows"][name] == len(records)


def test_full_run_answers_are_those_of_the_official_tool(full_run, penalised_model, data_dir, finance):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(penalised_model).eval()
    tokenizer = AutoTokenizer.from_pretrained(penalised_model)
    assert model.generation_config.repetition_penalty == 1.3 and tokenizer.padding_side == "right"
    official_setup(model, tokenizer)
    for name in BENCHMARKS:
        records = read_jsonl(full_run / f"generation_{name}_tiny.jsonl")
        official = official_inference(model, tokenizer, [record["prompt"] for record in records], 4)
        for record, decoded in zip(records, official, strict=True):
            assert decoded.startswith(record["output"])
            assert record["new_out"] == change_target(official_out_text(decoded)) == official_prediction(
                record["output"])


@pytest.mark.parametrize("name", BENCHMARKS)
def test_full_run_generations_rescore_to_the_same_accuracy(full_run, evaluation, tmp_path, capsys, name):
    expected = (full_run / f"acc_{name}_tiny.txt").read_text().rstrip(". ")
    generations = full_run / f"generation_{name}_tiny.jsonl"
    evaluation.main(["--score-generations", str(generations), "--datasets", name])
    assert capsys.readouterr().out.strip() == expected
    official = [{key: record[key] for key in ("new_target", "new_out")} | {"context": record["prompt"]}
                for record in read_jsonl(generations)]
    saved = write_generations(tmp_path / "official.jsonl", official, "json-array")
    evaluation.main(["--score-generations", str(saved), "--datasets", name])
    assert capsys.readouterr().out.strip() == expected


def test_a_partial_local_fiqa_copy_is_named_in_a_warning(finance, tmp_path, capsys):
    write_finance_fixtures(tmp_path)
    (tmp_path / "fiqa" / "validation.jsonl").unlink()
    examples = finance.load_examples("fiqa", tmp_path)
    assert "no validation split of fiqa" in capsys.readouterr().err
    rows = FIQA_SPLITS["train"] + FIQA_SPLITS["test"]
    expected = datasets.Dataset.from_list(rows).train_test_split(0.25, seed=42)["test"]
    assert [example["prompt"] for example in examples] == [
        official_prompt("tweet" if row["format"] == "post" else "news", row["sentence"]) for row in expected
    ]
    with pytest.raises(FileNotFoundError, match=r"tfns/validation\.jsonl"):
        finance.load_examples("tfns", tmp_path / "nothing")


def test_help_names_each_benchmarks_files_and_a_missing_copy_is_one_line(
    rendered_challenge, tmp_path, capsys
):
    evaluation = rendered_challenge("finance")("eval")
    with pytest.raises(SystemExit):
        evaluation.main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for name in ("DIR/fpb/train", "DIR/fiqa/train", "DIR/fiqa/validation", "DIR/fiqa/test",
                 "DIR/tfns/validation"):
        assert name in help_text, help_text
    (tmp_path / "fpb").mkdir()
    with pytest.raises(SystemExit) as failure:
        evaluation.main(["--base-model-name-path", str(tmp_path / "no-model"), "--data-dir", str(tmp_path),
                         "--datasets", "fpb"])
    assert failure.value.code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and str(tmp_path / "fpb" / "train.jsonl") in error, error
