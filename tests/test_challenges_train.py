"""Every challenge trains: its rows become the right examples, and a round runs through `flwr run`."""

from __future__ import annotations

import importlib
import json
import sys

import pytest

from testkit.challenge_data import ROWS, write_challenge_data
from testkit.render import render

from .smoke import assert_trained, final_adapter, train_rendered
from .variants import SMOKE_TARGETS

PREAMBLE = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n### Instruction:\n"
)


@pytest.fixture(scope="module")
def dataset_module(tmp_path_factory):
    project = render(tmp_path_factory.mktemp("rendered-dataset"))
    sys.path.insert(0, str(project))
    yield importlib.import_module(f"{project.name.replace('-', '_')}.dataset")
    sys.path.remove(str(project))


def examples(dataset_module, challenge: str, rows: list[dict]) -> list[dict]:
    from datasets import Dataset

    return list(dataset_module.to_prompt_completion(Dataset.from_list(rows), challenge))


def test_medical_rows_ask_the_flashcard_input(dataset_module):
    row = {"instruction": "Answer this question truthfully", "input": "What is sepsis?",
           "output": "An infection."}
    (example,) = examples(dataset_module, "medical", [row])
    assert example == {"prompt": PREAMBLE + "What is sepsis?\n### Response:", "completion": " An infection."}


def test_general_nlp_rows_keep_their_input_as_context(dataset_module):
    rows = [
        {"instruction": "Translate.", "input": "bonjour", "output": "hello", "text": "x"},
        {"instruction": "Name a colour.", "input": "", "output": "Red.", "text": "y"},
    ]
    with_input, without_input = examples(dataset_module, "general-nlp", rows)
    assert with_input["prompt"] == PREAMBLE + "Translate.\n### Input:\nbonjour\n### Response:"
    assert without_input["prompt"] == PREAMBLE + "Name a colour.\n### Response:"
    assert [with_input["completion"], without_input["completion"]] == [" hello", " Red."]


@pytest.mark.parametrize("challenge", ["finance", "code"])
def test_finance_and_code_rows_join_instruction_and_input_by_a_space(dataset_module, challenge):
    row = {"instruction": "Classify the text.", "input": "Profits rose.", "output": "positive"}
    (example,) = examples(dataset_module, challenge, [row])
    assert example == {
        "prompt": PREAMBLE + "Classify the text. Profits rose.\n### Response:", "completion": " positive"
    }


@pytest.mark.parametrize("challenge", ["general-nlp", "finance", "code"])
def test_data_lacking_a_challenge_column_is_named(dataset_module, challenge):
    from datasets import Dataset

    with pytest.raises(ValueError, match=f"lacks column.*output.*the {challenge} challenge needs"):
        dataset_module.to_prompt_completion(
            Dataset.from_list([{"instruction": "x", "input": "y"}]), challenge
        )


def test_fixture_rows_have_the_schemas_of_the_challenge_data_sets():
    assert set(ROWS["general-nlp"](1)[0]) == {"instruction", "input", "output", "text"}
    assert set(ROWS["finance"](1)[0]) == {"input", "output", "instruction"}
    assert set(ROWS["code"](1)[0]) == {"instruction", "input", "output"}


@pytest.mark.slow
@pytest.mark.parametrize("challenge", ["general-nlp", "finance", "code"])
def test_challenge_trains_one_round(challenge, superlink, tiny_model, tmp_path):
    model_dir = tiny_model("llama")
    data_dir = write_challenge_data(tmp_path / "data", challenge)
    outcome, results = train_rendered(
        superlink, tmp_path, {"base_model": str(model_dir), "challenge": challenge}, data_dir,
        **{"num-server-rounds": 1},
    )
    assert outcome.status == "finished:completed", outcome.output[-4000:]
    assert "`options.` fields" not in outcome.output, "Flower warned about the connection's form"
    adapter = final_adapter(results, 1)
    assert_trained(adapter, model_dir, SMOKE_TARGETS["llama"])
    leaderboard = json.loads((adapter.parent / "leaderboard.json").read_text())
    assert leaderboard["challenge"] == challenge
    assert any("static.dataset.name" in rule for rule in leaderboard["broken_rules"])


def test_an_example_longer_than_the_sequence_keeps_its_response(dataset_module, tiny_model):
    from datasets import Dataset
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model("llama"))
    short = {"prompt": "Is this short?", "completion": " Yes."}
    long = {"prompt": "A long preamble that fills the sequence. " * 20 + "What is the sentiment?",
            "completion": " positive"}
    fitted = list(dataset_module.keep_responses_within(Dataset.from_list([short, long]), tokenizer, 48))
    assert fitted[0] == short
    assert fitted[1]["completion"] == " positive"
    assert fitted[1]["prompt"].endswith("What is the sentiment?")
    assert len(tokenizer(fitted[1]["prompt"] + fitted[1]["completion"])["input_ids"]) + 1 <= 48
