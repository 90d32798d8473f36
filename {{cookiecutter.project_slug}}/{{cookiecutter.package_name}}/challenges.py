"""The four FlowerTune LLM Leaderboard challenges (the one table of their facts).

Import-light on purpose: the template's Jinja filters and hooks read it before any
dependency is installed, and the rendered code reads it at run time, so the README, the
config and the leaderboard guard cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

COMMUNICATION_BUDGET_MB = 200_000.0  # adapter arrays, both directions, the whole run
BYTES_PER_MB = 1024 * 1024  # the megabyte of every communication figure


@dataclass(frozen=True)
class Challenge:
    """What the leaderboard fixes for one challenge, and how this template serves it."""

    name: str  # the `challenge` answer and `static.challenge` in the run config
    title: str
    dataset_name: str  # static `dataset.name`: the training data, which entrants may not change
    num_supernodes: int  # one IID partition each; entrants may not change it
    fraction_train: float  # the official default share of nodes that train each round
    training_format: str  # how a data row becomes an instruction and a response
    benchmarks: tuple[str, ...]  # what the leaderboard evaluates, as its README names them
    metric: str
    evaluation_module: str  # the module under `evaluation/` that scores this challenge
    evaluation_support: tuple[str, ...]  # the shared `evaluation/` modules it needs
    official_evaluation: str  # the leaderboard's own evaluation code
    baseline_average: float  # the official baseline's average score (percent)
    # the official baseline's score of each benchmark (percent, in the order of `benchmarks`),
    # where the leaderboard publishes them
    baseline_scores: tuple[float, ...] | None


JOINED_INSTRUCTION = "`instruction` and `input` joined by a space are the instruction, `output` the response"
EVALUATION_URL = "https://github.com/adap/flower/tree/main/benchmarks/flowertune-llm/evaluation"

CHALLENGES: dict[str, Challenge] = {
    "medical": Challenge(
        name="medical",
        title="Medical",
        dataset_name="flwrlabs/medical-meadow-medical-flashcards",
        num_supernodes=20,
        fraction_train=0.1,
        training_format="the `input` column is the instruction and `output` the response",
        benchmarks=("PubMedQA", "MedMCQA", "MedQA", "CareQA"),
        metric="accuracy",
        evaluation_module="medical",
        evaluation_support=("engine", "data", "text_tasks", "multiple_choice"),
        official_evaluation=f"{EVALUATION_URL}/medical",
        baseline_average=32.82,
        baseline_scores=(59.00, 23.69, 27.10, 21.47),
    ),
    "general-nlp": Challenge(
        name="general-nlp",
        title="General NLP",
        dataset_name="flwrlabs/alpaca-gpt4",
        num_supernodes=20,
        fraction_train=0.1,
        training_format=(
            "the `instruction` column is the instruction, followed by the `input` column as its "
            "context when a row has one (the official app drops it), and `output` is the response"
        ),
        benchmarks=("MMLU STEM", "MMLU Social Sciences", "MMLU Humanities"),
        metric="accuracy",
        evaluation_module="general_nlp",
        evaluation_support=("engine", "data", "text_tasks", "multiple_choice"),
        official_evaluation=f"{EVALUATION_URL}/general-nlp",
        baseline_average=12.82,
        baseline_scores=(12.37, 13.49, 12.60),
    ),
    "finance": Challenge(
        name="finance",
        title="Finance",
        dataset_name="flwrlabs/fingpt-sentiment-train",
        num_supernodes=50,
        fraction_train=0.1,
        training_format=JOINED_INSTRUCTION,
        benchmarks=("FPB", "FiQA", "TFNS"),
        metric="accuracy",
        evaluation_module="finance",
        evaluation_support=("engine", "data", "text_tasks"),
        official_evaluation=f"{EVALUATION_URL}/finance",
        baseline_average=45.27,
        baseline_scores=None,
    ),
    "code": Challenge(
        name="code",
        title="Code",
        dataset_name="flwrlabs/code-alpaca-20k",
        num_supernodes=10,
        fraction_train=0.2,
        training_format=JOINED_INSTRUCTION,
        benchmarks=("HumanEval", "MBPP", "MultiPL-E JavaScript", "MultiPL-E C++"),
        metric="pass@1",
        evaluation_module="code",
        evaluation_support=("engine", "data"),
        official_evaluation=f"{EVALUATION_URL}/code",
        baseline_average=27.36,
        baseline_scores=None,
    ),
}
DEFAULT_CHALLENGE = "medical"

# The official baseline app's run config, the same in the four challenges (Flower's
# `examples/flowertune-llm-<challenge>/pyproject.toml`; its fraction is the challenge's
# `fraction_train`). It names no target modules: PEFT's default for Mistral is q_proj, v_proj.
OFFICIAL_BASELINE_CONFIG: dict[str, object] = {
    "model.name": "mistralai/Mistral-7B-v0.3",
    "model.quantization": 4,
    "model.lora.peft-lora-r": 32,
    "model.lora.peft-lora-alpha": 64,
    "model.lora.peft-lora-dropout": 0.075,
    "model.lora.peft-use-dora": False,
    "model.lora.target-modules": "q_proj,v_proj",
    "train.learning-rate-max": 5e-5,
    "train.learning-rate-min": 1e-6,
    "train.seq-length": 512,
    "train.training-arguments.per-device-train-batch-size": 16,
    "train.training-arguments.gradient-accumulation-steps": 1,
    "train.training-arguments.max-steps": 10,
    "strategy.name": "fedavg",
    "strategy.fraction-evaluate": 0.0,
    "num-server-rounds": 200,
}


def challenge(name: str) -> Challenge:
    """The challenge called `name`; a `ValueError` names the ones there are."""
    try:
        return CHALLENGES[str(name).strip()]
    except KeyError:
        raise ValueError(
            f"challenge = {name!r}: must be one of {', '.join(CHALLENGES)}"
        ) from None


def federation_config(name: str, num_cpus: int, num_gpus: float) -> str:
    """The `flwr run --federation-config` value that sizes the local simulation for a challenge:
    its SuperNodes, and the CPUs and GPU share of each ClientApp."""
    return (f"num-supernodes={challenge(name).num_supernodes} "
            f"client-resources-num-cpus={int(num_cpus)} client-resources-num-gpus={float(num_gpus)}")
