"""Local copies of the four Medical benchmarks, in their hub schemas, for offline tests.

The rows are made up for these tests (not taken from any data set). `write_benchmark_fixtures`
lays them out as `eval --data-dir` reads them, one file format per benchmark so that each
format is exercised: JSON lines, a JSON array and Parquet.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# PubMedQA, bigbio `pubmed_qa_labeled_fold0_source`: gold in `final_decision`.
PUBMEDQA_ROWS = [
    {
        "QUESTION": "Does a daily walk lower resting blood pressure in older adults?",
        "CONTEXTS": [
            "Adults over 65 with stage 1 hypertension walked 30 minutes a day for 12 weeks.",
            "Resting systolic pressure fell by a mean of 6 mmHg compared with controls.",
        ],
        "LABELS": ["METHODS", "RESULTS"],
        "MESHES": ["Hypertension", "Walking"],
        "YEAR": "2011",
        "reasoning_required_pred": "yes",
        "reasoning_free_pred": "yes",
        "final_decision": "yes",
        "LONG_ANSWER": "A daily walk lowered resting systolic pressure.",
    },
    {
        "QUESTION": "Is vitamin C supplementation linked to shorter colds in marathon runners?",
        "CONTEXTS": [
            "Runners took vitamin C or placebo during a training season.",
            "The number and length of colds did not differ between the groups.",
        ],
        "LABELS": ["METHODS", "RESULTS"],
        "MESHES": ["Ascorbic Acid", "Common Cold"],
        "YEAR": "2008",
        "reasoning_required_pred": "no",
        "reasoning_free_pred": "no",
        "final_decision": "no",
        "LONG_ANSWER": "Vitamin C did not shorten colds in this group.",
    },
    {
        "QUESTION": "Can a bedside ultrasound rule out appendicitis in children?",
        "CONTEXTS": [
            "Children with abdominal pain had a bedside ultrasound before surgery review.",
            "Sensitivity was high but a quarter of the scans could not see the appendix.",
        ],
        "LABELS": ["METHODS", "RESULTS"],
        "MESHES": ["Appendicitis", "Ultrasonography"],
        "YEAR": "2015",
        "reasoning_required_pred": "maybe",
        "reasoning_free_pred": "maybe",
        "final_decision": "maybe",
        "LONG_ANSWER": "Ultrasound helps, but a non-visualised appendix leaves doubt.",
    },
    {
        "QUESTION": "Do statins reduce the rate of a second stroke?",
        "CONTEXTS": [
            "Patients after an ischaemic stroke were given a statin or placebo.",
            "Recurrent strokes were fewer in the statin group over five years.",
        ],
        "LABELS": ["METHODS", "RESULTS"],
        "MESHES": ["Stroke", "Statins"],
        "YEAR": "2006",
        "reasoning_required_pred": "yes",
        "reasoning_free_pred": "yes",
        "final_decision": "yes",
        "LONG_ANSWER": "Statins lowered the rate of recurrent stroke.",
    },
    {
        "QUESTION": "Does chewing gum after bowel surgery shorten the hospital stay?",
        "CONTEXTS": [
            "Patients chewed gum three times a day after elective colon resection.",
            "Bowel sounds returned sooner, yet the length of stay was unchanged.",
        ],
        "LABELS": ["METHODS", "RESULTS"],
        "MESHES": ["Chewing Gum", "Length of Stay"],
        "YEAR": "2012",
        "reasoning_required_pred": "no",
        "reasoning_free_pred": "no",
        "final_decision": "no",
        "LONG_ANSWER": "Gum chewing did not shorten the stay.",
    },
    {
        "QUESTION": "Is night shift work associated with type 2 diabetes in nurses?",
        "CONTEXTS": [
            "A cohort of nurses reported their shift patterns every two years.",
            "Rotating night shifts were associated with a modestly higher risk of diabetes.",
        ],
        "LABELS": ["METHODS", "RESULTS"],
        "MESHES": ["Diabetes Mellitus, Type 2", "Shift Work Schedule"],
        "YEAR": "2013",
        "reasoning_required_pred": "maybe",
        "reasoning_free_pred": "yes",
        "final_decision": "maybe",
        "LONG_ANSWER": "The association is modest and confounding remains possible.",
    },
]


def _medmcqa(question: str, options: list[str], cop: int, subject: str) -> dict:
    """A MedMCQA row: options `opa`..`opd`, `cop` 0-3."""
    opa, opb, opc, opd = options
    return {
        "id": f"fixture-{subject.lower()}-{len(question)}",
        "question": question,
        "opa": opa, "opb": opb, "opc": opc, "opd": opd,
        "cop": cop,
        "choice_type": "single",
        "exp": "",
        "subject_name": subject,
        "topic_name": None,
    }


MEDMCQA_ROWS = [
    _medmcqa("Which hormone lowers the blood glucose level",
             ["Glucagon", "Insulin", "Cortisol", "Adrenaline"], 1, "Physiology"),
    _medmcqa("Scurvy is caused by a deficiency of:",
             ["Vitamin A", "Vitamin B12", "Vitamin C", "Vitamin D"], 2, "Biochemistry"),
    _medmcqa("The most common site of a femoral fracture after a fall in the elderly is the.",
             ["Femoral neck", "Femoral shaft", "Lateral condyle", "Greater trochanter"], 0,
             "Orthopaedics"),
    _medmcqa("Aspirin irreversibly inhibits which enzyme?",
             ["Lipoxygenase", "Phospholipase A2", "Thromboxane synthase", "Cyclooxygenase"], 3,
             "Pharmacology"),
    _medmcqa("Which chamber of the heart pumps blood into the aorta",
             ["Right atrium", "Right ventricle", "Left ventricle", "Left atrium"], 2, "Anatomy"),
    _medmcqa("First line drug in anaphylaxis is",
             ["Intramuscular adrenaline", "Oral antihistamine", "Inhaled salbutamol",
              "Intravenous hydrocortisone"], 0, "Medicine"),
    _medmcqa("Warfarin acts by antagonising:",
             ["Vitamin E", "Vitamin K", "Antithrombin III", "Heparin cofactor II"], 1,
             "Pharmacology"),
    _medmcqa("Which part of the brain coordinates posture and balance?",
             ["Cerebellum", "Thalamus", "Medulla", "Hippocampus"], 0, "Physiology"),
]


def _medqa(question: str, options: list[str], answer_index: int) -> dict:
    """A MedQA row, bigbio source schema: options as `{key, value}`, `answer` a value."""
    keys = "ABCD"
    return {
        "meta_info": "step1",
        "question": question,
        "answer_idx": keys[answer_index],
        "answer": options[answer_index],
        "options": [{"key": key, "value": value} for key, value in zip(keys, options, strict=True)],
    }


MEDQA_ROWS = [
    _medqa("A 62-year-old man has crushing chest pain for two hours. Which test comes first?",
           ["Electrocardiogram", "Chest X-ray", "D-dimer", "Echocardiogram"], 0),
    _medqa("A 24-year-old woman has wheeze, cough and night-time breathlessness. "
           "Which drug relieves an acute attack?",
           ["Montelukast", "Salbutamol", "Theophylline", "Omalizumab"], 1),
    _medqa("A 70-year-old vegan has a macrocytic anaemia and numb feet. Which deficiency is likely",
           ["Iron", "Folate", "Vitamin B12", "Vitamin D"], 2),
    _medqa("A 35-year-old man has fever, cough and a right lower lobe consolidation. "
           "Which organism is most likely?",
           ["Mycoplasma pneumoniae", "Legionella", "Staphylococcus aureus",
            "Streptococcus pneumoniae"], 3),
    _medqa("A 50-year-old obese woman has a raised fasting glucose twice. Which drug is first line.",
           ["Metformin", "Insulin glargine", "Gliclazide", "Pioglitazone"], 0),
    _medqa("A 19-year-old has sweating, tremor and confusion after insulin. What is the next step?",
           ["Oral metformin", "Glucose", "Intravenous fluids only", "Observation"], 1),
]


def _careqa(question: str, options: list[str], cop: int, category: str, exam_id: int) -> dict:
    """A CareQA (`CareQA_en`) row: options `op1`..`op4`, `cop` 1-4."""
    op1, op2, op3, op4 = options
    return {
        "exam_id": exam_id,
        "question": question,
        "op1": op1, "op2": op2, "op3": op3, "op4": op4,
        "cop": cop,
        "year": 2023,
        "category": category,
        "unique_id": f"fixture-{exam_id}",
    }


CAREQA_ROWS = [
    _careqa("In relation to the kidney, it is true that:",
            ["It stores glycogen", "It filters waste from the blood", "It produces bile",
             "It secretes insulin"], 2, "Biology", 1),
    _careqa("Thyroxine mainly regulates",
            ["The rate of metabolism", "Blood clotting", "Bone growth only", "Digestion"], 1,
            "Medicine", 2),
    _careqa("Which of the following is a symptom of hypoglycaemia?",
            ["Bradycardia", "Dry skin", "Sweating", "Polyuria"], 3, "Nursing", 3),
    _careqa("Beta blockers act on the heart by:",
            ["Raising the heart rate", "Slowing the heart rate", "Dilating the aorta",
             "Increasing contractility"], 2, "Pharmacology", 4),
    _careqa("Antibiotics are effective against.",
            ["Viruses", "Bacteria", "Prions", "Allergens"], 2, "Medicine", 5),
    _careqa("The liver stores which of the following",
            ["Glycogen", "Insulin", "Urea", "Bilirubin only"], 1, "Biology", 6),
]

FIXTURE_ROWS = {
    "pubmedqa": PUBMEDQA_ROWS,
    "medmcqa": MEDMCQA_ROWS,
    "medqa": MEDQA_ROWS,
    "careqa": CAREQA_ROWS,
}


def write_benchmark_fixtures(data_dir: Path | str) -> Path:
    """Write the rows as `<data_dir>/<benchmark>/<split>.<format>`; return `data_dir`."""
    data_dir = Path(data_dir)
    for name in FIXTURE_ROWS:
        (data_dir / name).mkdir(parents=True, exist_ok=True)
    (data_dir / "pubmedqa" / "test.jsonl").write_text(
        "".join(json.dumps(row) + "\n" for row in PUBMEDQA_ROWS), encoding="utf-8"
    )
    (data_dir / "medmcqa" / "validation.jsonl").write_text(
        "".join(json.dumps(row) + "\n" for row in MEDMCQA_ROWS), encoding="utf-8"
    )
    (data_dir / "medqa" / "test.json").write_text(json.dumps(MEDQA_ROWS), encoding="utf-8")
    pq.write_table(pa.Table.from_pylist(CAREQA_ROWS), data_dir / "careqa" / "test.parquet")
    return data_dir
