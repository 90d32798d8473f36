"""The Medical evaluation's prompts and the multiple-choice scoring, checked against the official
protocol."""

from __future__ import annotations

import pytest

from testkit.benchmark_fixtures import CAREQA_ROWS, MEDMCQA_ROWS, MEDQA_ROWS, PUBMEDQA_ROWS


@pytest.fixture(scope="module")
def scoring(rendered_package):
    """Prompts and scoring shared by the multiple-choice benchmarks (Medical, MMLU)."""
    return rendered_package("evaluation.multiple_choice")


@pytest.fixture(scope="module")
def benchmarks(rendered_package):
    return rendered_package("evaluation.medical")


# (output, prediction the official scorer compares with the gold answer)
MCQ_CASES = [
    ("B", "b"),
    (" (C) Aspirin", "c"),
    ("D.\nBecause cyclooxygenase is blocked", "d"),
    ("\n\nA", "a"),
    ("e", "e"),
    # Only the first character counts: "answer d" -> "a".
    ("Answer: D", "a"),
    # A long explanation starts with "t", which is no option: the whole output is compared.
    ("The correct answer is B because insulin lowers glucose.",
     "the correct answer is b because insulin lowers glucose."),
    ("12", "12"),
    # `\n##`: the first line after the first marker.
    ("Let me think.\n## B\nC is wrong", "b"),
    ("Reasoning\n### Answer: C", "a"),
    ("x\n##", "x\n##"),
    # Non-ASCII characters become spaces like any other non-alphanumeric character.
    ("éB", "b"),
    ("Ｂ", "ｂ"),
    ("", ""),
]

BOOLEAN_CASES = [
    ("Yes", "yes"),
    ("yes.", "yes"),
    ("YES", "yes"),
    ("¡yes!", "yes"),
    ("No", "no"),
    ("yesyes", "yes"),
    ("nono", "no"),
    ("yesno", "yes"),
    ("noyes", "no"),
    # Only the first fold found (in the order yesyes, nono, yesno, noyes) is applied.
    ("noyesyes", "noyesyes"),
    ("nono, yesyes", "nono, yesyes"),
    # Words are not folded; anything but a bare yes/no keeps the whole output.
    ("yes yes", "yes yes"),
    ("No, because the trial was small.", "no, because the trial was small."),
    ("The answer is:\n## Yes\nThe study shows", "yes"),
    ("Maybe", "maybe"),
    (" maybe", " maybe"),
    ("yés", "yés"),
    ("", ""),
]


@pytest.mark.parametrize(("output", "expected"), MCQ_CASES)
def test_mcq_prediction_follows_the_official_rules(scoring, output, expected):
    assert scoring.prediction(output, "mcq") == expected


@pytest.mark.parametrize(("output", "expected"), BOOLEAN_CASES)
def test_boolean_prediction_follows_the_official_rules(scoring, output, expected):
    assert scoring.prediction(output, "boolean") == expected


@pytest.mark.parametrize(
    ("output", "gold", "answer_type", "correct"),
    [
        ("(b) glucagon", "B", "mcq", True),
        ("Answer: B", "B", "mcq", False),
        ("Maybe", "maybe", "boolean", True),
        ("maybe.", "maybe", "boolean", False),
        ("yesyes", "Yes", "boolean", True),
        ("", "A", "mcq", False),
    ],
)
def test_correctness_compares_with_the_lower_cased_gold(scoring, output, gold, answer_type, correct):
    assert scoring.is_correct(output, gold, answer_type) is correct


def test_accuracy_is_the_share_of_correct_records(scoring):
    records = [
        {"gold": "A", "output": "A"},
        {"gold": "B", "output": "B. Insulin"},
        {"gold": "C", "output": "Answer: C"},
    ]
    score = scoring.accuracy(records, "mcq")
    assert score == 2 / 3
    assert f"Accuracy: {score}. " == "Accuracy: 0.6666666666666666. "
    with pytest.raises(ValueError, match="no generations"):
        scoring.accuracy([], "mcq")


def test_mcq_body_appends_a_question_mark_unless_the_question_ends_in_one_or_a_period(scoring):
    assert scoring.mcq_body("Which hormone lowers glucose", ["Glucagon", "Insulin"]) == (
        "Question: Which hormone lowers glucose?\n\nOptions:\nA. Glucagon\nB. Insulin"
    )
    assert scoring.mcq_body("Pick one.", ["x"]) == "Question: Pick one.\n\nOptions:\nA. x"
    assert scoring.mcq_body("Is it?", ["x"]).startswith("Question: Is it?\n")
    assert scoring.mcq_body("It is true that:", ["x"]).startswith("Question: It is true that:?\n")


def test_chat_wrapping(scoring):
    assert scoring.chat_wrap("P\n") == "<|im_start|>question\nP\n<|im_end|>\n<|im_start|>answer\n"


def test_medmcqa_prompt_and_gold(benchmarks):
    prompt, gold = benchmarks.medmcqa_example(MEDMCQA_ROWS[0])
    assert prompt == (
        "You are a medical doctor answering realworld medical entrance exam questions. Based on "
        "your understanding of basic and clinical science, medical knowledge, and mechanisms "
        "underlying health, disease, patient care, and modes of therapy, answer the following "
        "multiple-choice question. Select one correct answer from A to D. Base your answer on the "
        "current and standard practices referenced in medical guidelines.\n"
        "Question: Which hormone lowers the blood glucose level?\n\nOptions:\n"
        "A. Glucagon\nB. Insulin\nC. Cortisol\nD. Adrenaline\nThe answer is:\n"
    )
    assert gold == "B"
    assert [benchmarks.medmcqa_example(row)[1] for row in MEDMCQA_ROWS] == list("BCADCABA")


def test_careqa_uses_the_entrance_exam_instruction_and_one_based_gold(benchmarks):
    prompt, gold = benchmarks.careqa_example(CAREQA_ROWS[0])
    assert prompt.startswith(benchmarks.ENTRANCE_EXAM_INSTRUCTION + "\nQuestion: In relation to")
    assert "it is true that:?\n\nOptions:\nA. It stores glycogen\n" in prompt
    assert [benchmarks.careqa_example(row)[1] for row in CAREQA_ROWS] == list("BACBBA")
    for cop in (0, 5):
        with pytest.raises(ValueError, match="not one of the 4 options"):
            benchmarks.careqa_example({**CAREQA_ROWS[0], "cop": cop})


def test_medqa_prompt_and_gold_key(benchmarks):
    prompt, gold = benchmarks.medqa_example(MEDQA_ROWS[1])
    assert prompt.startswith(
        "You are a medical doctor taking the US Medical Licensing Examination. You need to"
    )
    assert "select one correct answer from A to E." in prompt
    assert prompt.endswith(
        "Which drug relieves an acute attack?\n\nOptions:\nA. Montelukast\nB. Salbutamol\n"
        "C. Theophylline\nD. Omalizumab\nThe answer is:\n"
    )
    assert gold == "B"
    with pytest.raises(ValueError, match="none of the options"):
        benchmarks.medqa_example({**MEDQA_ROWS[1], "answer": "Aspirin"})


def test_pubmedqa_prompt_is_contexts_then_question(benchmarks):
    prompt, gold = benchmarks.pubmedqa_example(PUBMEDQA_ROWS[2])
    assert prompt == (
        "As an expert doctor in clinical science and medical knowledge, can you tell me if the "
        "following statement is correct? Answer yes, no, or maybe.\n"
        "Children with abdominal pain had a bedside ultrasound before surgery review.\n"
        "Sensitivity was high but a quarter of the scans could not see the appendix.\n"
        "Can a bedside ultrasound rule out appendicitis in children?\n"
        "The answer is:\n"
    )
    assert gold == "maybe"


def test_each_benchmark_reads_the_split_of_the_protocol(benchmarks):
    table = {
        name: (spec.hub_id, spec.hub_config, spec.split, spec.answer_type)
        for name, spec in benchmarks.BENCHMARKS.items()
    }
    assert table == {
        "pubmedqa": ("bigbio/pubmed_qa", "pubmed_qa_labeled_fold0_source", "test", "boolean"),
        "medmcqa": ("medmcqa", None, "validation", "mcq"),
        "medqa": ("bigbio/med_qa", "med_qa_en_4options_source", "test", "mcq"),
        "careqa": ("HPAI-BSC/CareQA", "CareQA_en", "test", "mcq"),
    }
