"""Flashcard files in the schema of flwrlabs/medical-meadow-medical-flashcards."""

from __future__ import annotations

import json
from pathlib import Path

SAMPLE_FLASHCARDS_DIR = Path(__file__).with_name("sample_data")
INSTRUCTION = "Answer this question truthfully"

# Question/answer pairs written for these tests (not taken from any data set).
_CARDS = [
    ("What hormone lets cells take up glucose from the blood?", "Insulin, made by the pancreas."),
    ("Which enzyme does aspirin inhibit?", "Aspirin irreversibly inhibits cyclooxygenase."),
    ("What does the left ventricle pump?", "Oxygenated blood into the aorta."),
    ("What is anaemia?", "A lower than normal amount of haemoglobin or red blood cells."),
    ("What causes a myocardial infarction?", "Blood flow to part of the heart muscle stops."),
    ("What do the kidneys do?", "They filter waste from the blood and balance salts and water."),
    ("What can vitamin B12 deficiency cause?", "A macrocytic anaemia and damage to peripheral nerves."),
    ("How do beta blockers act on the heart?", "They slow the heart rate and reduce contractility."),
    ("What are the signs of asthma?", "Wheezing, cough and shortness of breath."),
    ("What does thyroxine regulate?", "The rate of metabolism."),
    ("Do antibiotics treat viral infections?", "No, antibiotics act on bacteria only."),
    ("Where do older adults often fracture the femur after a fall?", "At the femoral neck."),
    ("What does the liver store?", "Glycogen; it also produces bile."),
    ("What is type 2 diabetes linked to?", "Insulin resistance and obesity."),
    ("How does warfarin work?", "It antagonises vitamin K dependent clotting factors."),
    ("What is pneumonia?", "An infection that inflames the air sacs of the lungs."),
    ("What does the cerebellum coordinate?", "Voluntary movement, posture and balance."),
    ("What are the symptoms of hypoglycaemia?", "Sweating, tremor, confusion and loss of consciousness."),
    ("What is sepsis?", "A life threatening response of the body to an infection."),
    ("What is the first line treatment of anaphylaxis?", "Intramuscular adrenaline."),
]


def flashcard_rows(count: int, offset: int = 0) -> list[dict[str, str]]:
    """`count` rows cycling through the cards, each with its own number."""
    rows = []
    for index in range(offset, offset + count):
        question, answer = _CARDS[index % len(_CARDS)]
        rows.append({"instruction": INSTRUCTION, "input": f"{question} (card {index})", "output": answer})
    return rows


def write_flashcards(directory: Path | str, count: int = 40, offset: int = 0) -> Path:
    """Write a local data set folder (`train.jsonl`) that FederatedDataset can load."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "train.jsonl").open("w", encoding="utf-8") as handle:
        for row in flashcard_rows(count, offset):
            handle.write(json.dumps(row) + "\n")
    return directory
