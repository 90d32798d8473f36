"""The General NLP evaluation (MMLU by category) checked against the official tool's recipe, offline.

Prompts, golds, subject order and scoring are written here from the official FlowerTune General
NLP evaluation, not taken from the rendered code.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from testkit.benchmark_fixtures import MMLU_ROWS, write_mmlu_fixtures

from .test_eval import read_jsonl, sequential_outputs, write_generations

# The official MMLU_CATEGORY table: the subjects of each category, in its order.
OFFICIAL_MMLU_CATEGORY = {
    "stem": [
        "abstract_algebra", "anatomy", "astronomy", "college_biology", "college_chemistry",
        "college_computer_science", "college_mathematics", "college_physics", "computer_security",
        "conceptual_physics", "electrical_engineering", "elementary_mathematics", "high_school_biology",
        "high_school_chemistry", "high_school_computer_science", "high_school_mathematics",
        "high_school_physics", "high_school_statistics", "machine_learning",
    ],
    "social_sciences": [
        "econometrics", "high_school_geography", "high_school_government_and_politics",
        "high_school_macroeconomics", "high_school_microeconomics", "high_school_psychology",
        "human_sexuality", "professional_psychology", "public_relations", "security_studies", "sociology",
        "us_foreign_policy",
    ],
    "humanities": [
        "formal_logic", "high_school_european_history", "high_school_us_history", "high_school_world_history",
        "international_law", "jurisprudence", "logical_fallacies", "moral_disputes", "moral_scenarios",
        "philosophy", "prehistory", "professional_law", "world_religions",
    ],
    "other": [
        "business_ethics", "clinical_knowledge", "college_medicine", "global_facts", "human_aging",
        "management", "marketing", "medical_genetics", "miscellaneous", "nutrition",
        "professional_accounting", "professional_medicine", "virology",
    ],
}
CATEGORIES = ["stem", "social_sciences", "humanities"]  # the leaderboard's


def official_prompt(row: dict) -> str:
    """`format_example(input, [A, B, C, D])` after the instruction, then `The answer is:`."""
    question = row["input"]
    if not question.endswith("?") and not question.endswith("."):
        question += "?"
    options = "\n".join(f"{letter}. {row[letter]}" for letter in "ABCD")
    body = "Question: " + question + "\n\nOptions:\n" + options
    return f"Answer the following multiple choice question.\n{body}\nThe answer is:\n"


def official_examples(category: str, subjects: list[str] | None = None) -> list[dict]:
    return [
        {"prompt": official_prompt(row), "gold": row["target"], "subset": subject}
        for subject in OFFICIAL_MMLU_CATEGORY[category] if subjects is None or subject in subjects
        for row in MMLU_ROWS[subject]
    ]


def official_prediction(output: str, gold: str) -> tuple[str, str]:
    """The official `format_answer(output.lower(), gold.lower(), "mcq")`."""
    output_full, answer = output.lower(), gold.lower()
    text = output_full
    if "\n##" in text:
        text = text.split("\n##")[1].split("\n")[0].strip().lower()
    text = re.sub(r"[^a-zA-Z0-9]", " ", text).strip()
    text = re.sub(" +", " ", text)
    text = text.encode("ascii", "ignore").decode("ascii")[:1]
    return (text, answer) if text in ["a", "b", "c", "d", "e", "yes", "no"] else (output_full, answer)


def official_accuracy(records: list[dict]) -> float:
    pairs = [official_prediction(record["output"], record["gold"]) for record in records]
    return sum(pred == gold for pred, gold in pairs) / len(pairs)


@pytest.fixture(scope="module")
def package(rendered_challenge):
    return rendered_challenge("general-nlp")


@pytest.fixture(scope="module")
def general_nlp(package):
    return package("evaluation.general_nlp")


@pytest.fixture(scope="module")
def multiple_choice(package):
    return package("evaluation.multiple_choice")


@pytest.fixture(scope="module")
def engine(package):
    return package("evaluation.engine")


@pytest.fixture(scope="module")
def evaluation(package):
    return package("eval")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_mmlu_fixtures(tmp_path_factory.mktemp("mmlu-data"))


def test_the_fixture_is_a_full_copy_of_the_leaderboard_categories():
    subjects = {subject for category in CATEGORIES for subject in OFFICIAL_MMLU_CATEGORY[category]}
    assert set(MMLU_ROWS) == subjects


def test_categories_are_the_official_subjects_in_the_official_order(general_nlp):
    assert {name: list(subjects) for name, subjects in general_nlp.MMLU_CATEGORIES.items()} == (
        OFFICIAL_MMLU_CATEGORY
    )


def test_the_eval_command_dispatches_to_mmlu_with_the_leaderboard_categories(evaluation, general_nlp):
    assert evaluation.challenge_evaluation() is general_nlp
    args = evaluation.build_parser(general_nlp).parse_args([])
    assert args.datasets == ["mmlu"] and args.category == CATEGORIES
    assert (args.batch_size, args.quantization, args.run_name) == (16, "4", "fl")


def test_a_prompt_and_its_gold_are_the_official_ones(general_nlp):
    (row,) = MMLU_ROWS["anatomy"]
    assert general_nlp.mmlu_example(row, "anatomy") == {
        "prompt": "Answer the following multiple choice question.\n"
                  "Question: Which bone is the longest in the human body?\n\n"
                  "Options:\nA. Humerus\nB. Tibia\nC. Femur\nD. Fibula\n"
                  "The answer is:\n",
        "gold": "C",
        "subset": "anatomy",
    }


@pytest.mark.parametrize(("question", "asked"), [
    ("How many elements does the cyclic group of order 6 have", "Question: How many elements does the cyclic "
                                                                 "group of order 6 have?\n"),
    ("Every group of prime order is:", "Question: Every group of prime order is:?\n"),
    ("The planet closest to the Sun is.", "Question: The planet closest to the Sun is.\n"),
    ("Is it?", "Question: Is it?\n"),
])
def test_a_question_mark_is_added_unless_the_question_ends_in_one_or_a_period(general_nlp, question, asked):
    row = {"input": question, "A": "w", "B": "x", "C": "y", "D": "z", "target": "A"}
    assert f"\n{asked}\nOptions:\n" in general_nlp.mmlu_example(row, "anatomy")["prompt"]


@pytest.mark.parametrize("category", CATEGORIES)
def test_a_category_is_its_subjects_rows_in_the_official_order(general_nlp, data_dir, category):
    assert general_nlp.load_category(category, data_dir) == official_examples(category)


def test_a_partial_local_copy_evaluates_the_subjects_it_holds_and_names_the_others(general_nlp, tmp_path,
                                                                                 capsys):
    write_mmlu_fixtures(tmp_path, ["machine_learning", "anatomy"])
    assert general_nlp.load_category("stem", tmp_path) == official_examples("stem", ["anatomy",
                                                                                     "machine_learning"])
    warning = capsys.readouterr().err
    assert "2 of the 19 subjects" in warning and "abstract_algebra" in warning
    with pytest.raises(FileNotFoundError, match="business_ethics"):
        general_nlp.load_category("other", tmp_path)


def test_hub_loading_reads_every_subject_of_the_category_from_lukaemon_mmlu(general_nlp, package,
                                                                           monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(*args, **kwargs):
        # a keyword given as None is one not given
        calls.append((args, {key: value for key, value in kwargs.items() if value is not None}))
        if kwargs.get("revision") is None:
            raise RuntimeError("Dataset scripts are no longer supported, but found mmlu.py")
        return datasets.Dataset.from_list(MMLU_ROWS.get(kwargs["data_dir"], MMLU_ROWS["anatomy"]))

    monkeypatch.setattr(package("evaluation.data").datasets, "load_dataset", fake_load_dataset)
    examples = general_nlp.load_category("social_sciences", None)
    assert examples == official_examples("social_sciences")
    subjects = OFFICIAL_MMLU_CATEGORY["social_sciences"]
    assert calls[::2] == [(("lukaemon/mmlu", subject), {"split": "test"}) for subject in subjects]
    assert calls[1::2] == [(("lukaemon/mmlu",), {"revision": "refs/convert/parquet", "data_dir": subject,
                                                 "split": "test"}) for subject in subjects]


@pytest.fixture(scope="module")
def full_run(package, tiny_model, data_dir, tmp_path_factory):
    """`python -m <package>.eval --datasets mmlu --category stem,social_sciences,humanities`, offline."""
    output_dir = tmp_path_factory.mktemp("mmlu-run") / "benchmarks"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TQDM_DISABLE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", f"{package.name}.eval", "--base-model-name-path", str(tiny_model("llama")),
         "--quantization", "none", "--data-dir", str(data_dir), "--datasets", "mmlu",
         "--category", ",".join(CATEGORIES), "--batch-size", "4", "--run-name", "tiny",
         "--output-dir", str(output_dir)],
        cwd=package.project, env=env, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return output_dir, result.stdout


def test_full_run_writes_one_result_per_category(full_run):
    output_dir, stdout = full_run
    expected = {f"acc_mmlu_{category}_tiny.txt" for category in CATEGORIES}
    expected |= {f"generation_mmlu_{category}_tiny.jsonl" for category in CATEGORIES} | {"summary_tiny.json"}
    assert {path.name for path in output_dir.iterdir()} == expected
    summary = json.loads((output_dir / "summary_tiny.json").read_text())
    for category in CATEGORIES:
        records = read_jsonl(output_dir / f"generation_mmlu_{category}_tiny.jsonl")
        assert [{key: record[key] for key in ("prompt", "gold", "subset")} for record in records] == (
            official_examples(category)
        )
        accuracy = official_accuracy(records)
        assert (output_dir / f"acc_mmlu_{category}_tiny.txt").read_text() == f"Accuracy: {accuracy}. "
        assert summary["accuracy"][f"mmlu_{category}"] == accuracy
        assert re.search(rf"^mmlu_{category} +{len(records)} +{100 * accuracy:.2f}$", stdout, re.M)


def test_full_run_answers_equal_generate_on_each_prompt_alone(full_run, multiple_choice, engine, tiny_model):
    output_dir, _ = full_run
    model = engine.load_model(str(tiny_model("llama")), None, "none")
    tokenizer = engine.load_tokenizer(str(tiny_model("llama")))
    outputs = []
    for category in CATEGORIES:
        records = read_jsonl(output_dir / f"generation_mmlu_{category}_tiny.jsonl")
        expected = sequential_outputs(multiple_choice, engine, model, tokenizer, records, 4)
        assert [record["output"] for record in records] == expected
        outputs += expected
    assert any(output.strip() for output in outputs)


@pytest.mark.parametrize("form", ["json-lines", "json-array"])
def test_saved_generations_rescore_identically(full_run, evaluation, tmp_path, capsys, form):
    output_dir, _ = full_run
    for category in CATEGORIES:
        records = read_jsonl(output_dir / f"generation_mmlu_{category}_tiny.jsonl")
        saved = write_generations(tmp_path / f"{category}.jsonl", records, form)
        evaluation.main(["--score-generations", str(saved), "--datasets", "mmlu"])
        expected = (output_dir / f"acc_mmlu_{category}_tiny.txt").read_text().rstrip(". ")
        assert capsys.readouterr().out.strip() == expected


# (output, gold, whether the official scorer counts it correct)
OUTPUTS = [
    ("B", "B", True), (" (c) Femur", "C", True), ("d.", "D", True), ("Answer: B", "B", False),
    ("\n## C\nbecause", "C", True), ("The answer is A", "A", False), ("", "A", False), ("b", "A", False),
    ("Ｂ", "B", False),
]


def known_outcomes() -> list[dict]:
    records = [{"prompt": f"p{index}", "gold": gold, "subset": "anatomy", "output": output}
               for index, (output, gold, _) in enumerate(OUTPUTS)]
    assert [official_prediction(r["output"], r["gold"])[0] == r["gold"].lower() for r in records] == [
        correct for _, _, correct in OUTPUTS
    ]
    return records


@pytest.mark.parametrize("category", [*CATEGORIES, "other"])
def test_each_category_scores_as_the_official_mcq_scorer(general_nlp, category):
    assert general_nlp.category_task(category).name == f"mmlu_{category}"
    assert general_nlp.category_task(category).score(known_outcomes()) == 4 / 9


@pytest.mark.parametrize("form", ["json-lines", "json-array"])
def test_score_generations_of_known_outcomes(evaluation, tmp_path, capsys, form):
    records = known_outcomes()
    saved = write_generations(tmp_path / "generation_mmlu_stem_fl.jsonl", records, form)
    evaluation.main(["--score-generations", str(saved), "--datasets", "mmlu"])
    assert capsys.readouterr().out.strip() == f"Accuracy: {official_accuracy(records)}"
    assert official_accuracy(records) == 4 / 9


@pytest.mark.parametrize(("argv", "message"), [
    (["--category", "stem,arts", "--base-model-name-path", "m"], "use a comma list of stem, social_sciences"),
    (["--datasets", "pubmedqa"], "use a comma list of mmlu"),
])
def test_bad_command_lines_stop_with_a_message(evaluation, capsys, argv, message):
    with pytest.raises(SystemExit) as stopped:
        evaluation.main(argv)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
