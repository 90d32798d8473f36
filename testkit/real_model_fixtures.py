"""Rows for measuring the evaluations on a real model, written for this kit (no row is taken
from any data set): short multiple-choice questions in the MedMCQA and MedQA schemas, FPB-style
financial news sentences, and held-out flashcards for the training figure."""

from __future__ import annotations

# (question, four options, index of the right one)
ENTRANCE_EXAM_QUESTIONS = [
    ("Deficiency of which vitamin causes scurvy", ["Vitamin A", "Vitamin B12", "Vitamin C", "Vitamin D"], 2),
    ("The largest organ of the human body is the", ["Liver", "Skin", "Brain", "Lung"], 1),
    ("Insulin is secreted by which cells of the pancreas", ["Alpha cells", "Beta cells", "Delta cells",
                                                             "Acinar cells"], 1),
    ("Which blood group is the universal donor", ["A positive", "B negative", "AB positive",
                                                  "O negative"], 3),
    ("The normal resting heart rate of an adult is", ["20-40 per minute", "60-100 per minute",
                                                      "120-160 per minute", "180-200 per minute"], 1),
    ("Which organ produces bile", ["Gallbladder", "Pancreas", "Liver", "Spleen"], 2),
    ("Which bone is the longest in the human body", ["Humerus", "Tibia", "Femur", "Radius"], 2),
    ("Which cranial nerve supplies the muscles of facial expression", ["Trigeminal", "Facial", "Vagus",
                                                                       "Hypoglossal"], 1),
    ("The drug of choice for anaphylactic shock is", ["Adrenaline", "Atropine", "Digoxin", "Morphine"], 0),
    ("Which hormone regulates the body's circadian rhythm", ["Cortisol", "Melatonin", "Thyroxine",
                                                             "Glucagon"], 1),
    ("Iron is mainly absorbed in the", ["Stomach", "Duodenum", "Ileum", "Colon"], 1),
    ("Which chamber of the heart pumps blood into the aorta", ["Right atrium", "Right ventricle",
                                                               "Left atrium", "Left ventricle"], 3),
    ("The causative organism of tuberculosis is", ["Mycobacterium tuberculosis", "Staphylococcus aureus",
                                                   "Streptococcus pyogenes", "Escherichia coli"], 0),
    ("Which electrolyte disturbance causes peaked T waves on an ECG", ["Hyponatremia", "Hypokalemia",
                                                                       "Hyperkalemia", "Hypercalcemia"], 2),
    ("Which vitamin is produced in the skin on exposure to sunlight", ["Vitamin K", "Vitamin D",
                                                                        "Vitamin E", "Vitamin B1"], 1),
    ("The functional unit of the kidney is the", ["Neuron", "Nephron", "Alveolus", "Hepatocyte"], 1),
    ("Which antibody class crosses the placenta", ["IgA", "IgM", "IgG", "IgE"], 2),
    ("Which part of the brain coordinates balance and posture", ["Cerebellum", "Medulla", "Thalamus",
                                                                  "Hypothalamus"], 0),
    ("The normal pH of arterial blood is about", ["6.8", "7.0", "7.4", "7.9"], 2),
    ("Which enzyme in saliva begins the digestion of starch", ["Pepsin", "Lipase", "Trypsin", "Amylase"], 3),
    ("Koplik spots are seen in", ["Measles", "Mumps", "Rubella", "Chickenpox"], 0),
    ("Which gland is called the master gland of the body", ["Thyroid", "Adrenal", "Pituitary", "Pineal"], 2),
    ("Night blindness is caused by a lack of", ["Vitamin A", "Vitamin C", "Vitamin B6", "Folic acid"], 0),
    ("Which valve lies between the left atrium and the left ventricle", ["Tricuspid", "Pulmonary",
                                                                          "Mitral", "Aortic"], 2),
]

USMLE_QUESTIONS = [
    ("A 24-year-old woman has heat intolerance, weight loss and a diffusely enlarged thyroid with a bruit. "
     "Which antibody is most likely present?",
     ["Anti-TSH receptor", "Anti-smooth muscle", "Anti-centromere", "Anti-histone"], 0),
    ("A 60-year-old smoker has crushing chest pain for one hour and ST elevation in leads II, III and aVF. "
     "Which artery is most likely occluded?",
     ["Left anterior descending", "Right coronary", "Left circumflex", "Left main"], 1),
    ("A 7-year-old boy has periorbital swelling and cola-coloured urine two weeks after a sore throat. "
     "What is the most likely diagnosis?",
     ["Minimal change disease", "IgA nephropathy", "Post-streptococcal glomerulonephritis",
      "Alport syndrome"], 2),
    ("A 30-year-old man has a painless genital ulcer with a clean base and firm edges. Which organism is "
     "the most likely cause?",
     ["Haemophilus ducreyi", "Herpes simplex virus", "Chlamydia trachomatis", "Treponema pallidum"], 3),
    ("A 45-year-old woman has fatigue, pale skin and a low haemoglobin with a low mean corpuscular volume. "
     "What is the most likely cause?",
     ["Iron deficiency", "Vitamin B12 deficiency", "Folate deficiency", "Haemolysis"], 0),
    ("A 70-year-old man has a resting tremor, slow movements and rigid limbs. Loss of which neurons "
     "explains these signs?",
     ["Motor neurons of the spinal cord", "Dopaminergic neurons of the substantia nigra",
      "Cholinergic neurons of the basal nucleus", "Purkinje cells"], 1),
    ("A 19-year-old student has fever, neck stiffness and a purple rash on the legs. Which organism is the "
     "most likely cause?",
     ["Listeria monocytogenes", "Streptococcus agalactiae", "Neisseria meningitidis", "Cryptococcus"], 2),
    ("A 55-year-old man taking lisinopril develops a dry cough. Which substance accumulating explains "
     "the cough?",
     ["Angiotensin II", "Renin", "Aldosterone", "Bradykinin"], 3),
    ("A 28-year-old woman has a butterfly rash on the face, joint pain and protein in the urine. Which test "
     "is most specific for her disease?",
     ["Anti-double-stranded DNA", "Rheumatoid factor", "Antinuclear antibody", "ESR"], 0),
    ("A 40-year-old man has burning upper abdominal pain that improves with meals. Which organism is most "
     "often involved?",
     ["Campylobacter jejuni", "Helicobacter pylori", "Giardia lamblia", "Clostridioides difficile"], 1),
    ("A newborn has a continuous machine-like murmur at the left upper sternal border. Which drug can close "
     "the defect?",
     ["Prostaglandin E1", "Digoxin", "Indomethacin", "Furosemide"], 2),
    ("A 65-year-old woman has sudden weakness of the right arm and face and cannot speak fluently. Which "
     "artery is most likely affected?",
     ["Right middle cerebral", "Basilar", "Right posterior cerebral", "Left middle cerebral"], 3),
]

# (news sentence, FPB label: 0 negative, 1 neutral, 2 positive)
FINANCE_SENTENCES = [
    ("The company's quarterly profit rose 25 percent on strong demand for its cloud services.", 2),
    ("Net sales fell by 12 percent as the group lost two of its largest customers.", 0),
    ("The board will meet on Tuesday to discuss the annual report.", 1),
    ("Operating profit more than doubled to EUR 40 million in the third quarter.", 2),
    ("The bank cut its full-year forecast after loan losses rose sharply.", 0),
    ("The new plant is located in the northern part of the country.", 1),
    ("Shares jumped 8 percent after the retailer reported record holiday sales.", 2),
    ("The airline reported a wider loss as fuel costs climbed.", 0),
    ("The company employs about 3,000 people in 12 countries.", 1),
    ("The order is worth about EUR 15 million and lifts the order book to a new high.", 2),
    ("The steelmaker will lay off 400 workers and close one of its mills.", 0),
    ("The agreement was signed in Helsinki on Monday.", 1),
    ("Analysts raised their price target after the strong results.", 2),
    ("Revenue declined for the fourth quarter in a row, missing estimates.", 0),
    ("The group's chief executive will present the strategy at the capital markets day.", 1),
    ("The merger is expected to cut costs by EUR 50 million a year and boost earnings.", 2),
]

# Flashcards in the training data's schema, none of them among the training fixture's cards.
HELD_OUT_FLASHCARDS = [
    {"instruction": "Answer this question truthfully", "input": question, "output": answer}
    for question, answer in [
        ("What does the pancreas release into the small intestine?", "Digestive enzymes and bicarbonate."),
        ("What is hypertension?", "Blood pressure that stays higher than normal."),
        ("Which cells carry oxygen in the blood?", "Red blood cells, with their haemoglobin."),
        ("What does the spleen filter?", "Old red blood cells and germs from the blood."),
        ("What is a fracture?", "A break in a bone."),
        ("What do platelets do?", "They help the blood to clot."),
        ("What is dehydration?", "A loss of more body water than is taken in."),
        ("Which organ exchanges oxygen and carbon dioxide?", "The lungs, in their alveoli."),
    ]
]
