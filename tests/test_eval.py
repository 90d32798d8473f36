"""The built-in Medical evaluation end to end, offline: tiny models and fixture benchmarks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from testkit.benchmark_fixtures import FIXTURE_ROWS, write_benchmark_fixtures
from testkit.tiny_models import FAMILIES

ALL_BENCHMARKS = ["pubmedqa", "medmcqa", "medqa", "careqa"]


@pytest.fixture(scope="module")
def evaluation(rendered_package):
    """The rendered `eval` command (a dispatcher to the challenge's evaluation)."""
    return rendered_package("eval")


@pytest.fixture(scope="module")
def medical(rendered_package):
    return rendered_package("evaluation.medical")


@pytest.fixture(scope="module")
def multiple_choice(rendered_package):
    return rendered_package("evaluation.multiple_choice")


@pytest.fixture(scope="module")
def generation(rendered_package):
    """The shared evaluation engine."""
    return rendered_package("evaluation.engine")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_benchmark_fixtures(tmp_path_factory.mktemp("benchmarks-data"))


@pytest.fixture(scope="module")
def lora_adapter(tiny_model, tmp_path_factory):
    """A LoRA adapter of the tiny llama with non-zero weights, so that it changes answers."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model("llama"))
    config = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj", "down_proj"],
                        init_lora_weights=False, task_type="CAUSAL_LM")
    adapter_dir = tmp_path_factory.mktemp("adapter")
    get_peft_model(base, config).save_pretrained(adapter_dir)
    return adapter_dir


def fixture_prompts(medical, multiple_choice) -> list[str]:
    """Chat-wrapped prompts of every fixture row, as the model sees them."""
    benchmarks = medical.BENCHMARKS
    return [
        multiple_choice.chat_wrap(benchmarks[name].example(row)[0])
        for name, rows in FIXTURE_ROWS.items() for row in rows
    ]


def sequential_outputs(multiple_choice, generation, model, tokenizer, records, batch_size) -> list[str]:
    """The official way: `generate` on each chat-wrapped prompt alone, with the token limits of
    `batch_size` batches (each row may write as many tokens as its batch's first gold has), and
    every row that repeats a prompt given the output of the last of them."""
    golds = [record["gold"] for record in records]
    limits = multiple_choice.official_max_new_tokens(tokenizer, golds, batch_size)
    outputs = [generation.greedy_decode(model, tokenizer, [multiple_choice.chat_wrap(record["prompt"])],
                                        limit)[0]
               for record, limit in zip(records, limits, strict=True)]
    last_output = {record["prompt"]: output for record, output in zip(records, outputs, strict=True)}
    return [last_output[record["prompt"]] for record in records]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_eval_command_dispatches_to_the_medical_evaluation(evaluation, medical):
    assert evaluation.challenge_evaluation() is medical


def test_defaults_are_the_official_ones(evaluation, medical):
    args = evaluation.build_parser(medical).parse_args([])
    assert (args.run_name, args.batch_size, args.quantization) == ("fl", 16, "4")
    assert args.datasets == ALL_BENCHMARKS
    assert args.output_dir == Path("benchmarks")
    assert args.peft_path is None and args.data_dir is None


def test_token_limit_of_a_batch_is_that_of_its_first_gold(multiple_choice, tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model("llama"))
    length = {gold: len(tokenizer(gold, add_special_tokens=False)["input_ids"])
              for gold in ("maybe", "no")}
    assert length["maybe"] != length["no"]
    golds = ["maybe", "no", "no", "maybe", "maybe"]
    limits = multiple_choice.official_max_new_tokens(tokenizer, golds, batch_size=2)
    assert limits == [length["maybe"]] * 2 + [length["no"]] * 2 + [length["maybe"]]


def test_decoding_batches_share_a_token_limit_and_cover_every_row_once(generation):
    prompts = ["x" * length for length in (50, 10, 40, 30, 20, 60, 5)]
    limits = [1, 2, 1, 1, 2, 1, 1]
    batches = generation.decoding_batches(prompts, limits, batch_size=2)
    assert sorted(row for batch in batches for row in batch) == list(range(len(prompts)))
    assert all(len(batch) <= 2 for batch in batches)
    assert all(len({limits[row] for row in batch}) == 1 for batch in batches)
    assert batches[0] == [6, 3]  # the shortest prompts of the most common limit come first


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_batched_answers_equal_one_at_a_time_answers(family, medical, multiple_choice, generation,
                                                     tiny_model):
    model = generation.load_model(str(tiny_model(family)), None, "none")
    tokenizer = generation.load_tokenizer(str(tiny_model(family)))
    prompts = fixture_prompts(medical, multiple_choice)
    limits = [1 + row % 4 for row in range(len(prompts))]  # several steps with a KV cache too
    batched = generation.generate_answers(model, tokenizer, prompts, limits, batch_size=8)
    one_at_a_time = generation.generate_answers(model, tokenizer, prompts, limits, batch_size=1)
    # the official way: `generate` on each prompt alone
    official = [generation.greedy_decode(model, tokenizer, [prompt], limit)[0]
                for prompt, limit in zip(prompts, limits, strict=True)]
    assert batched == one_at_a_time == official
    assert any(batched)  # the model did answer (not only end-of-sequence tokens)


def test_a_sliding_window_shorter_than_the_prompts_still_limits_attention(medical, multiple_choice,
                                                                        generation, tiny_model):
    model = generation.load_model(str(tiny_model("mistral")), None, "none")
    tokenizer = generation.load_tokenizer(str(tiny_model("mistral")))
    prompts = fixture_prompts(medical, multiple_choice)
    unlimited = [generation.greedy_decode(model, tokenizer, [prompt], 1)[0] for prompt in prompts]
    model.config.sliding_window = 64  # the fixture prompts are a few hundred tokens long
    official = [generation.greedy_decode(model, tokenizer, [prompt], 1)[0] for prompt in prompts]
    assert official != unlimited  # the window changes answers, so a mask ignoring it would show
    answers = generation.generate_answers(model, tokenizer, prompts, [1] * len(prompts), batch_size=8)
    assert answers == official


def test_a_generation_config_that_changes_greedy_tokens_uses_generate(medical, multiple_choice, generation,
                                                                     tiny_model):
    model = generation.load_model(str(tiny_model("llama")), None, "none")
    assert generation.is_plain_greedy(model)
    model.generation_config.repetition_penalty = 1.3
    assert not generation.is_plain_greedy(model)
    tokenizer = generation.load_tokenizer(str(tiny_model("llama")))
    prompts = fixture_prompts(medical, multiple_choice)[:6]
    official = [generation.greedy_decode(model, tokenizer, [prompt], 1)[0] for prompt in prompts]
    answers = generation.generate_answers(model, tokenizer, prompts, [1] * len(prompts), batch_size=4)
    assert answers == official


def test_rows_repeating_a_prompt_carry_the_last_ones_output(multiple_choice, generation, tiny_model):
    model = generation.load_model(str(tiny_model("llama")), None, "none")
    tokenizer = generation.load_tokenizer(str(tiny_model("llama")))
    prompt, other = "Is it a repeated question?", "Is it another question?"
    # Batches of 2: the repeated prompt gets the limit of "maybe" first, of "no" last.
    examples = [{"prompt": prompt, "gold": "maybe"}, {"prompt": other, "gold": "no"},
                {"prompt": prompt, "gold": "no"}]
    limits = multiple_choice.official_max_new_tokens(tokenizer, ["maybe", "no"], batch_size=1)
    alone = [generation.greedy_decode(model, tokenizer, [multiple_choice.chat_wrap(prompt)], limit)[0]
             for limit in limits]
    assert alone[0] != alone[1]
    records = multiple_choice.answer_examples(model, tokenizer, examples, batch_size=2, description="")
    assert records[0]["output"] == records[2]["output"] == alone[1]


@pytest.fixture(scope="module")
def full_run(evaluation, tiny_model, data_dir, tmp_path_factory):
    """All four benchmarks, unquantized tiny llama, batches of 4."""
    output_dir = tmp_path_factory.mktemp("run") / "benchmarks"
    evaluation.main([
        "--base-model-name-path", str(tiny_model("llama")), "--quantization", "none",
        "--data-dir", str(data_dir), "--batch-size", "4", "--run-name", "tiny",
        "--output-dir", str(output_dir),
    ])
    return output_dir


def test_full_run_writes_the_official_files_and_a_summary(full_run, medical, data_dir):
    expected = {f"acc_{name}_tiny.txt" for name in ALL_BENCHMARKS}
    expected |= {f"generation_{name}_tiny.jsonl" for name in ALL_BENCHMARKS}
    expected |= {"summary_tiny.json"}
    assert {path.name for path in full_run.iterdir()} == expected

    summary = json.loads((full_run / "summary_tiny.json").read_text())
    for name in ALL_BENCHMARKS:
        text = (full_run / f"acc_{name}_tiny.txt").read_text()
        assert re.fullmatch(r"Accuracy: [0-9.e-]+\. ", text)
        assert float(text.split()[1].rstrip(".")) == summary["accuracy"][name]
        records = read_jsonl(full_run / f"generation_{name}_tiny.jsonl")
        examples = medical.load_examples(name, data_dir)
        assert [(r["prompt"], r["gold"]) for r in records] == [
            (e["prompt"], e["gold"]) for e in examples
        ]
        assert not records[0]["prompt"].startswith("<|im_start|>")
        assert summary["rows"][name] == len(FIXTURE_ROWS[name])
    assert summary["average"] == pytest.approx(sum(summary["accuracy"].values()) / 4)
    assert summary["batch_size"] == 4 and summary["quantization"] == "none"


def test_full_run_prints_a_table_with_the_average(evaluation, tiny_model, data_dir, tmp_path,
                                                  capsys):
    evaluation.main([
        "--base-model-name-path", str(tiny_model("llama")), "--quantization", "none",
        "--data-dir", str(data_dir), "--datasets", "medqa,careqa",
        "--output-dir", str(tmp_path),
    ])
    summary = json.loads((tmp_path / "summary_fl.json").read_text())
    table = capsys.readouterr().out
    for name in ("medqa", "careqa"):
        assert re.search(rf"^{name} +{summary['rows'][name]} +{100 * summary['accuracy'][name]:.2f}$",
                         table, re.M)
    assert re.search(rf"^Average +{100 * summary['average']:.2f}$", table, re.M)
    assert "pubmedqa" not in table


def test_full_run_answers_equal_one_at_a_time_answers(full_run, multiple_choice, generation,
                                                      tiny_model):
    model = generation.load_model(str(tiny_model("llama")), None, "none")
    tokenizer = generation.load_tokenizer(str(tiny_model("llama")))
    for name in ALL_BENCHMARKS:
        records = read_jsonl(full_run / f"generation_{name}_tiny.jsonl")
        expected = sequential_outputs(multiple_choice, generation, model, tokenizer, records, 4)
        assert [record["output"] for record in records] == expected


def write_generations(path: Path, records: list[dict], form: str) -> Path:
    """Save records as JSON lines (ours) or as one JSON array (the official tool's)."""
    if form == "json-lines":
        path.write_text("".join(json.dumps(record) + "\n" for record in records))
    else:
        path.write_text(json.dumps(records))
    return path


@pytest.mark.parametrize("form", ["json-lines", "json-array"])
def test_saved_generations_rescore_identically(full_run, evaluation, tmp_path, capsys, form):
    for name in ALL_BENCHMARKS:
        records = read_jsonl(full_run / f"generation_{name}_tiny.jsonl")
        saved = write_generations(tmp_path / f"{name}.jsonl", records, form)
        evaluation.main(["--score-generations", str(saved), "--datasets", name])
        expected = (full_run / f"acc_{name}_tiny.txt").read_text().rstrip(". ")
        assert capsys.readouterr().out.strip() == expected


@pytest.mark.parametrize("form", ["json-lines", "json-array"])
def test_score_generations_of_known_outcomes(evaluation, tmp_path, capsys, form):
    records = [
        {"prompt": "p", "gold": "yes", "output": "Yes."},
        {"prompt": "p", "gold": "maybe", "output": "maybe"},
        {"prompt": "p", "gold": "no", "output": "No, it does not."},
    ]
    saved = write_generations(tmp_path / "generations.jsonl", records, form)
    evaluation.main(["--score-generations", str(saved), "--datasets", "pubmedqa"])
    assert capsys.readouterr().out.strip() == "Accuracy: 0.6666666666666666"


def test_score_generations_runs_as_a_module_in_the_project(full_run, evaluation):
    project_dir = Path(evaluation.__file__).parents[1]
    result = subprocess.run(
        [sys.executable, "-m", f"{evaluation.__package__}.eval", "--datasets", "medmcqa",
         "--score-generations", str(full_run / "generation_medmcqa_tiny.jsonl")],
        cwd=project_dir, capture_output=True, text=True, check=True,
    )
    expected = (full_run / "acc_medmcqa_tiny.txt").read_text().rstrip(". ")
    assert result.stdout.strip().splitlines()[-1] == expected


def test_four_bit_run_with_an_adapter(evaluation, multiple_choice, generation, tiny_model, lora_adapter,
                                      data_dir, tmp_path):
    base = str(tiny_model("llama"))
    evaluation.main([
        "--base-model-name-path", base, "--peft-path", str(lora_adapter), "--quantization", "4",
        "--data-dir", str(data_dir), "--datasets", "pubmedqa,medmcqa", "--batch-size", "4",
        "--output-dir", str(tmp_path),
    ])
    summary = json.loads((tmp_path / "summary_fl.json").read_text())
    assert summary["peft_path"] == str(lora_adapter) and summary["quantization"] == "4"

    model = generation.load_model(base, str(lora_adapter), "4")
    assert any(type(module).__name__ == "Linear4bit" for module in model.modules())
    tokenizer = generation.load_tokenizer(base)
    for name in ("pubmedqa", "medmcqa"):
        records = read_jsonl(tmp_path / f"generation_{name}_fl.jsonl")
        expected = sequential_outputs(multiple_choice, generation, model, tokenizer, records, 4)
        assert [record["output"] for record in records] == expected


def test_the_adapter_changes_the_model(generation, tiny_model, lora_adapter):
    base = str(tiny_model("llama"))
    tokenizer = generation.load_tokenizer(base)
    inputs = tokenizer(["The answer is:"], return_tensors="pt")
    with torch.inference_mode():
        plain = generation.load_model(base, None, "none")(**inputs).logits
        adapted = generation.load_model(base, str(lora_adapter), "none")(**inputs).logits
    assert not torch.allclose(plain, adapted)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--score-generations", "x.jsonl"], "exactly one --datasets name"),
        (["--score-generations", "x.jsonl", "--datasets", "medqa,careqa"], "exactly one"),
        ([], "--base-model-name-path is required"),
        (["--datasets", "medqa,usmle"], "use a comma list of pubmedqa, medmcqa, medqa, careqa"),
        (["--batch-size", "0", "--base-model-name-path", "m"], "at least 1"),
    ],
)
def test_bad_command_lines_stop_with_a_message(evaluation, capsys, argv, message):
    with pytest.raises(SystemExit) as stopped:
        evaluation.main(argv)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_local_copy_names_the_files_looked_for(medical, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"medmcqa/validation\.jsonl"):
        medical.load_examples("medmcqa", tmp_path)


def test_hub_loading_uses_the_protocol_ids_and_falls_back_to_the_parquet_export(
    rendered_package, medical, monkeypatch
):
    import datasets

    calls = []

    def fake_load_dataset(*args, **kwargs):
        # a keyword given as None is one not given
        calls.append((args, {key: value for key, value in kwargs.items() if value is not None}))
        if len(calls) == 1:
            raise RuntimeError("Dataset scripts are no longer supported, but found pubmed_qa.py")
        return datasets.Dataset.from_list(FIXTURE_ROWS["pubmedqa"])

    monkeypatch.setattr(rendered_package("evaluation.data").datasets, "load_dataset", fake_load_dataset)
    examples = medical.load_examples("pubmedqa", None)
    assert len(examples) == len(FIXTURE_ROWS["pubmedqa"])
    assert calls == [
        (("bigbio/pubmed_qa", "pubmed_qa_labeled_fold0_source"), {"split": "test"}),
        (("bigbio/pubmed_qa",), {"revision": "refs/convert/parquet",
                                 "data_dir": "pubmed_qa_labeled_fold0_source", "split": "test"}),
    ]


def test_with_a_sentencepiece_style_tokenizer_batches_answer_as_one_at_a_time(
        medical, multiple_choice, generation, tmp_path):
    """The speed benchmark's tokenizer: BOS first, text back intact, fewer tokens, same answers."""
    from testkit.tiny_models import (
        build_tiny_model,
        train_sentencepiece_style_tokenizer,
        train_tokenizer,
    )

    prompts = fixture_prompts(medical, multiple_choice)
    tokenizer = train_sentencepiece_style_tokenizer(
        [line for prompt in prompts for line in prompt.splitlines()], vocab_size=1024)
    ids = tokenizer(prompts[0])["input_ids"]
    assert ids[0] == tokenizer.bos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == prompts[0]
    assert len(ids) < 0.6 * len(train_tokenizer()(prompts[0])["input_ids"])
    model_dir = build_tiny_model("mistral", tmp_path / "model", tokenizer=tokenizer)
    model = generation.load_model(str(model_dir), None, "none")
    tokenizer = generation.load_tokenizer(str(model_dir))
    official = [generation.greedy_decode(model, tokenizer, [prompt], 1)[0] for prompt in prompts]
    answers = generation.generate_answers(model, tokenizer, prompts, [1] * len(prompts), batch_size=8)
    assert answers == official
