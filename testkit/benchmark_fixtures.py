"""Local copies of the evaluation benchmarks, in their hub schemas, for offline tests.

The rows are made up for these tests (not taken from any data set). `write_benchmark_fixtures`
lays out the four Medical benchmarks as `eval --data-dir` reads them, one file format per
benchmark so that each format is exercised: JSON lines, a JSON array and Parquet.
`write_mmlu_fixtures` writes MMLU (General NLP) as `mmlu/<subject>/test.jsonl`, and
`write_finance_fixtures` FPB, FiQA and TFNS, each split as JSON lines.
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


# --- General NLP: MMLU (`lukaemon/mmlu`: `input`, options `A`..`D`, gold letter `target`) ---

def _mmlu(question: str, options: list[str], target: str) -> dict:
    a, b, c, d = options
    return {"input": question, "A": a, "B": b, "C": c, "D": d, "target": target}


# Per subject, its test rows. Every subject of the STEM, social sciences and humanities
# categories has at least one, so a run over those three categories reads a full local copy;
# questions end in `?`, `.`, `:` or nothing, to exercise the official question mark rule.
MMLU_ROWS: dict[str, list[dict]] = {
    # STEM
    "abstract_algebra": [
        _mmlu("How many elements does the cyclic group of order 6 have", ["3", "6", "12", "36"], "B"),
        _mmlu("Every group of prime order is:", ["abelian only if the prime is 2", "cyclic",
                                                 "non-abelian", "trivial"], "B"),
    ],
    "anatomy": [_mmlu("Which bone is the longest in the human body?",
                      ["Humerus", "Tibia", "Femur", "Fibula"], "C")],
    "astronomy": [_mmlu("The planet closest to the Sun is.", ["Venus", "Mercury", "Mars", "Earth"], "B")],
    "college_biology": [_mmlu("Which organelle makes most of a cell's ATP",
                              ["Ribosome", "Golgi body", "Lysosome", "Mitochondrion"], "D")],
    "college_chemistry": [_mmlu("What is the pH of a neutral solution at 25 degrees C?",
                                ["0", "7", "10", "14"], "B")],
    "college_computer_science": [_mmlu("The worst-case time of binary search on n sorted items is",
                                       ["O(1)", "O(log n)", "O(n)", "O(n log n)"], "B")],
    "college_mathematics": [_mmlu("What is the derivative of x^3?", ["x^2", "3x^2", "3x", "x^4 / 4"], "B")],
    "college_physics": [_mmlu("A body in free fall near the Earth accelerates at about:",
                              ["1 m/s^2", "5 m/s^2", "9.8 m/s^2", "98 m/s^2"], "C")],
    "computer_security": [_mmlu("Which attack floods a server with requests from many machines?",
                                ["Phishing", "Distributed denial of service", "SQL injection",
                                 "Cross-site scripting"], "B")],
    "conceptual_physics": [_mmlu("Sound cannot travel through.", ["water", "steel", "air", "a vacuum"], "D")],
    "electrical_engineering": [_mmlu("Ohm's law relates voltage, current and",
                                     ["resistance", "frequency", "power factor", "inductance"], "A")],
    "elementary_mathematics": [
        _mmlu("What is 7 times 8?", ["54", "56", "64", "48"], "B"),
        _mmlu("Which number is prime", ["21", "27", "29", "33"], "C"),
    ],
    "high_school_biology": [_mmlu("Plants take in which gas for photosynthesis?",
                                  ["Oxygen", "Nitrogen", "Carbon dioxide", "Helium"], "C")],
    "high_school_chemistry": [_mmlu("The chemical symbol of sodium is:", ["So", "Sd", "Na", "S"], "C")],
    "high_school_computer_science": [_mmlu("How many bits are in one byte?", ["4", "8", "16", "32"], "B")],
    "high_school_mathematics": [_mmlu("Solve for x: 2x + 4 = 10.", ["2", "3", "4", "7"], "B")],
    "high_school_physics": [_mmlu("The unit of electric charge is the",
                                  ["volt", "ampere", "ohm", "coulomb"], "D")],
    "high_school_statistics": [_mmlu("The median of 3, 9, 4, 7 and 5 is",
                                     ["4", "5", "5.6", "7"], "B")],
    "machine_learning": [_mmlu("Which method reduces overfitting in a neural network?",
                               ["More epochs without validation", "Dropout", "A larger learning rate",
                                "Removing the training data"], "B")],
    # Social sciences
    "econometrics": [_mmlu("Ordinary least squares minimises the sum of",
                           ["absolute residuals", "squared residuals", "fitted values",
                            "squared regressors"], "B")],
    "high_school_geography": [_mmlu("Which is the largest ocean on Earth?",
                                    ["Atlantic", "Indian", "Arctic", "Pacific"], "D")],
    "high_school_government_and_politics": [
        _mmlu("In a federal system, power is shared between:",
              ["two political parties", "the national and regional governments", "judges and juries",
               "voters and candidates"], "B"),
    ],
    "high_school_macroeconomics": [
        _mmlu("A sustained rise in the general price level is called.",
              ["deflation", "inflation", "recession", "stagnation"], "B"),
        _mmlu("Which body usually sets a country's interest rate target",
              ["The central bank", "The stock exchange", "Commercial banks", "The tax office"], "A"),
    ],
    "high_school_microeconomics": [_mmlu("When the price of a normal good falls, the quantity demanded",
                                         ["falls", "stays the same", "rises", "becomes zero"], "C")],
    "high_school_psychology": [_mmlu("Which nervous system division drives the fight-or-flight response?",
                                     ["Sympathetic", "Parasympathetic", "Somatic", "Enteric"], "A")],
    "human_sexuality": [_mmlu("Which hormone is made mainly by the testes?",
                              ["Oestrogen", "Progesterone", "Testosterone", "Prolactin"], "C")],
    "professional_psychology": [_mmlu("A test that measures what it claims to measure is said to be",
                                      ["reliable", "valid", "normed", "standardised"], "B")],
    "public_relations": [_mmlu("A press release is written mainly for:",
                               ["shareholders' meetings", "journalists", "internal audits", "lawyers"], "B")],
    "security_studies": [_mmlu("Deterrence aims to prevent an attack by.",
                               ["threatening unacceptable costs", "signing trade deals", "holding elections",
                                "raising tariffs"], "A")],
    "sociology": [_mmlu("The process of learning the norms of a society is called",
                        ["migration", "socialisation", "urbanisation", "stratification"], "B")],
    "us_foreign_policy": [_mmlu("The Marshall Plan helped rebuild which region after 1945?",
                                ["South America", "Western Europe", "Central Asia", "Oceania"], "B")],
    # Humanities
    "formal_logic": [_mmlu("If P implies Q and P is true, then Q is.",
                           ["false", "true", "undetermined", "both true and false"], "B")],
    "high_school_european_history": [_mmlu("The French Revolution began in which year?",
                                           ["1689", "1789", "1815", "1848"], "B")],
    "high_school_us_history": [_mmlu("The Declaration of Independence was adopted in",
                                     ["1776", "1787", "1812", "1865"], "A")],
    "high_school_world_history": [_mmlu("The Silk Road mainly connected China with:",
                                        ["Australia", "the Mediterranean world", "the Americas",
                                         "Antarctica"], "B")],
    "international_law": [_mmlu("A treaty binds the states that have",
                                ["criticised it", "ratified it", "read it", "translated it"], "B")],
    "jurisprudence": [
        _mmlu("Legal positivism holds that law is:",
              ["whatever is morally right", "made by human institutions", "revealed by nature",
               "a matter of custom only"], "B"),
        _mmlu("Which thinker wrote The Concept of Law?", ["H. L. A. Hart", "John Austin", "Ronald Dworkin",
                                                          "Hans Kelsen"], "A"),
    ],
    "logical_fallacies": [_mmlu("Attacking the person instead of the argument is called",
                                ["a straw man", "ad hominem", "begging the question", "a red herring"], "B")],
    "moral_disputes": [_mmlu("Utilitarianism judges an act by its.",
                             ["motives", "consequences", "traditions", "legality"], "B")],
    "moral_scenarios": [_mmlu("I returned the wallet I found to its owner. Is that morally wrong?",
                              ["Wrong", "Not wrong", "Wrong only at night", "Not a moral question"], "B")],
    "philosophy": [_mmlu("Who wrote the Republic", ["Aristotle", "Plato", "Kant", "Hume"], "B")],
    "prehistory": [_mmlu("The Stone Age is divided into the Palaeolithic, the Mesolithic and the",
                         ["Neolithic", "Bronze Age", "Iron Age", "Holocene"], "A")],
    "professional_law": [_mmlu("A contract usually needs an offer, an acceptance and:",
                               ["a witness", "consideration", "a notary", "a lawyer"], "B")],
    "world_religions": [_mmlu("The holy book of Islam is the.",
                              ["Torah", "Vedas", "Quran", "Tripitaka"], "C")],
}


def write_mmlu_fixtures(data_dir: Path | str, subjects: list[str] | None = None) -> Path:
    """Write `<data_dir>/mmlu/<subject>/test.jsonl` for `subjects` (default: every one); return `data_dir`."""
    data_dir = Path(data_dir)
    for subject in MMLU_ROWS if subjects is None else subjects:
        folder = data_dir / "mmlu" / subject
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "test.jsonl").write_text(
            "".join(json.dumps(row) + "\n" for row in MMLU_ROWS[subject]), encoding="utf-8"
        )
    return data_dir


# --- Finance: FPB, FiQA and TFNS in their hub schemas ---

# takala/financial_phrasebank `sentences_50agree`, train split: `sentence`, `label`
# (0 negative, 1 neutral, 2 positive). The official tool evaluates a quarter of it.
FPB_ROWS = [
    {"sentence": sentence, "label": label}
    for sentence, label in [
        ("Net sales rose 12 % to EUR 48 million compared with the previous year .", 2),
        ("The company will hold its annual general meeting in Tampere on 3 April .", 1),
        ("Operating loss widened to EUR 5.2 million from EUR 1.1 million .", 0),
        ("The order is worth about USD 3 million .", 1),
        ("Profit before taxes more than doubled in the third quarter .", 2),
        ("The group cut 80 jobs after demand for paper fell .", 0),
        ("The new plant is located in the north of the country .", 1),
        ("Shares in the retailer jumped after it raised its full-year guidance .", 2),
        ("Cash flow from operations was negative at EUR -3 million .", 0),
        ("The contract covers the delivery of two cranes .", 1),
        ("Orders received grew by a third , well ahead of expectations .", 2),
        ("The bank warned that credit losses would rise next year .", 0),
        ("The chief executive will present the results on Friday .", 1),
        ("Its market share increased in every region .", 2),
        ("Sales of the mobile unit declined sharply in Asia .", 0),
        ("The firm has some 400 employees .", 1),
        ("Earnings per share improved to EUR 0.45 from EUR 0.30 .", 2),
        ("The agreement was signed in Helsinki .", 1),
        ("The shipyard postponed the launch after a fire , hurting its margins .", 0),
        ("Positive demand in Germany lifted the quarter 's revenue .", 2),
        ("The merger talks were called off and the stock slid .", 0),
        ("The product range includes doors and windows .", 1),
        ("Operating profit reached a record EUR 20 million .", 2),
        ("Not a negative word was said about the outlook , which stayed unchanged .", 1),
    ]
]

# pauri32/fiqa-2018: `sentence`, `snippets`, `target`, `sentiment_score` (the gold: below -0.1
# negative, below 0.1 neutral, else positive), `aspects`, `format` ("post": a tweet, else news),
# `label`. The official tool ignores `label`, so here it often disagrees with the score.
def _fiqa(sentence: str, score: float, fmt: str, target: str, label: int) -> dict:
    return {"sentence": sentence, "snippets": f"['{sentence[:20]}']", "target": target,
            "sentiment_score": score, "aspects": "['Corporate/Sales']", "format": fmt, "label": label}


FIQA_SPLITS = {
    "train": [
        _fiqa("$ACME breaking out above resistance, adding more", 0.52, "post", "ACME", 0),
        _fiqa("Widgetco shares tumble as chief executive quits", -0.61, "headline", "Widgetco", 2),
        _fiqa("Retailer keeps its dividend unchanged", 0.0, "headline", "Retailer", 0),
        _fiqa("$BETA short here, guidance looks weak", -0.35, "post", "BETA", 1),
        _fiqa("Miner's output steady in second quarter", 0.05, "headline", "Miner", 2),
        _fiqa("Brewer upgraded to buy on strong volumes", 0.1, "headline", "Brewer", 0),
        _fiqa("$GAMMA flat today, waiting for earnings", -0.1, "post", "GAMMA", 2),
        _fiqa("Insurer hit by record storm claims", -0.72, "headline", "Insurer", 1),
        _fiqa("$DELTA long, great quarter and raised outlook", 0.81, "post", "DELTA", 0),
        _fiqa("Airline traffic slightly lower in May", -0.11, "headline", "Airline", 1),
    ],
    "validation": [
        _fiqa("Chipmaker wins large contract from carmaker", 0.44, "headline", "Chipmaker", 0),
        _fiqa("$EPS sold everything, this one is going down", -0.5, "post", "EPS", 2),
        _fiqa("Telecom group sees revenue broadly flat", 0.099, "headline", "Telecom", 0),
        _fiqa("$ZETA holding my position for now", 0.02, "post", "ZETA", 2),
    ],
    "test": [
        _fiqa("Drugmaker's trial misses main goal", -0.66, "headline", "Drugmaker", 2),
        _fiqa("$OMEGA new highs, momentum is strong", 0.67, "post", "OMEGA", 1),
        _fiqa("Utility to publish results next week", -0.02, "headline", "Utility", 0),
        _fiqa("Bank profit beats estimates as costs fall", 0.38, "headline", "Bank", 1),
        _fiqa("$KAPPA weak volume, could drop further", -0.28, "post", "KAPPA", 0),
        _fiqa("Steelmaker sales edge up on price rises", 0.12, "headline", "Steelmaker", 0),
    ],
}

# zeroshot/twitter-financial-news-sentiment, validation split: `text`, `label`
# (0 negative, 1 positive, 2 neutral: not the FPB order).
TFNS_ROWS = [
    {"text": text, "label": label}
    for text, label in [
        ("Stocks slide as bond yields climb to a new high https://t.co/abc", 0),
        ("$AAPL beats on revenue, shares up after hours", 1),
        ("Fed minutes due at 2 p.m. Eastern", 2),
        ("Oil falls for a third day on demand worries", 0),
        ("Company X raises dividend by 10%", 1),
        ("Futures little changed ahead of the jobs report", 2),
        ("Retail sales unexpectedly drop in March", 0),
        ("Chip stocks rally as orders surge", 1),
        ("Earnings calendar for the week ahead", 2),
    ]
]


def write_finance_fixtures(data_dir: Path | str) -> Path:
    """Write `fpb/train.jsonl`, `fiqa/{train,validation,test}.jsonl` and `tfns/validation.jsonl`."""
    data_dir = Path(data_dir)
    files = {
        data_dir / "fpb" / "train.jsonl": FPB_ROWS,
        **{data_dir / "fiqa" / f"{split}.jsonl": rows for split, rows in FIQA_SPLITS.items()},
        data_dir / "tfns" / "validation.jsonl": TFNS_ROWS,
    }
    for path, rows in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return data_dir
