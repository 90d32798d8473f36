"""Validate every answer before anything is rendered; one line per bad answer, exit 1.

Importable as a module (`validate`, `problems`) for tests and the template's Jinja extension;
cookiecutter runs it as a script after substituting the answers below.
"""

from __future__ import annotations

import json
import keyword
import math
import re
import sys
from pathlib import Path

ANSWERS_JSON = r"""{{ cookiecutter | jsonify }}"""

APP_NAME_MAX = 32
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
APP_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")
ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
VERSION = re.compile(r"^\d+(\.\d+)*([a-zA-Z0-9.+-]*)$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")

POSITIVE_INTEGERS = (
    "peft_lora_r", "peft_lora_alpha", "per_device_train_batch_size", "max_steps",
    "accumulation_steps", "num_server_rounds", "num_cpus", "save_every_round", "seq_length",
)
BOOLEANS = (
    "peft_use_dora", "bf16", "tf32", "gradient_checkpointing", "dynamic_data_seed", "lora_target_experts",
)
TRUE_WORDS = ("true", "yes", "y", "1")
FALSE_WORDS = ("false", "no", "n", "0")
# Answers given as text and checked against `_choices` in cookiecutter.json (cookiecutter's own
# choice lists fail with a traceback on a wrong value given to --no-input, before any hook runs).
CHOICES = (
    "challenge", "quantization", "optimizer", "lr_scheduler_type", "transport_dtype", "license", "strategy",
)
# number answers: field -> (lowest, highest, lowest allowed, highest allowed, what is allowed);
# the `__` ones are not prompted (only strategies that use them read them) but may be given.
RANGES = {
    "__proximal_mu": (0.0, math.inf, True, False, "must be a number >= 0"),
    "__server_learning_rate": (0.0, math.inf, False, False, "must be a positive number"),
    "__server_momentum": (0.0, 1.0, True, False, "must be a number in [0, 1)"),
    "__beta_1": (0.0, 1.0, True, False, "must be a number in [0, 1)"),
    "__beta_2": (0.0, 1.0, True, False, "must be a number in [0, 1)"),
    "__tau": (0.0, math.inf, False, False, "must be a positive number"),
    "fraction_evaluate": (0.0, 1.0, True, True, "must be a number in [0, 1]"),
    "__validation_fraction": (0.0, 1.0, False, False, "must be a number in (0, 1)"),
    "lora_dropout": (0.0, 1.0, True, False, "must be a number in [0, 1)"),
    "fraction_fit": (0.0, 1.0, False, True, "must be a number in (0, 1]"),
    "num_gpus": (0.0, math.inf, True, False, "must be a non-negative number"),
    "max_lr": (0.0, math.inf, False, False, "must be a positive number"),
    "min_lr": (0.0, math.inf, False, False, "must be a positive number"),
}


class AnswerError(ValueError):
    """One bad answer: the field, the value and what is allowed."""

    def __init__(self, field: str, value: object, allowed: str) -> None:
        super().__init__(f"{field} = {value!r}: {allowed}")
        self.field = field


class InvalidAnswers(ValueError):
    """Every bad answer of a render, one line each."""

    def __init__(self, problems: list[AnswerError]) -> None:
        super().__init__("\n".join(f"ERROR: {problem}" for problem in problems))
        self.problems = problems
        self.fields = [problem.field for problem in problems]


def positive_int(field: str, value: object) -> int:
    if isinstance(value, bool) or not re.fullmatch(r"\s*\d+\s*", str(value)) or int(value) <= 0:
        raise AnswerError(field, value, "must be a positive integer")
    return int(value)


def number(field: str, value: object, allowed: str) -> float:
    if isinstance(value, bool):
        raise AnswerError(field, value, allowed)
    try:
        result = float(str(value))
    except ValueError:
        raise AnswerError(field, value, allowed) from None
    if not math.isfinite(result):
        raise AnswerError(field, value, allowed)
    return result


def in_range(field: str, value: object) -> float:
    low, high, low_allowed, high_allowed, allowed = RANGES[field]
    result = number(field, value, allowed)
    if result < low or result > high or (result == low and not low_allowed) or (
        result == high and not high_allowed
    ):
        raise AnswerError(field, value, allowed)
    return result


def boolean(field: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_WORDS + FALSE_WORDS:
        return text in TRUE_WORDS
    raise AnswerError(field, value, "must be true or false")


def check_base_model(value: object) -> None:
    text = str(value)
    path = Path(text).expanduser()
    if HUB_ID.match(text) and not path.is_absolute():
        return
    if path.is_absolute() and path.is_dir():
        return
    raise AnswerError(
        "base_model", value,
        "must be a hub id owner/name or an existing local directory given as an absolute path",
    )


def check_target_modules(value: object) -> None:
    text = str(value).strip()
    if text.lower() in ("auto", "all-linear"):
        return
    names = [name.strip() for name in text.split(",")]
    if not names or any(not MODULE_NAME.match(name) for name in names):
        raise AnswerError(
            "lora_target_modules", value,
            "must be auto, all-linear or a comma-separated list of module names (q_proj,v_proj)",
        )


def check_text(field: str, value: object) -> None:
    if not str(value).strip():
        raise AnswerError(field, value, "must not be empty")


def check_slug(slug: object) -> None:
    if not APP_NAME.match(str(slug)) or len(str(slug)) > APP_NAME_MAX:
        raise AnswerError(
            "project_slug", slug,
            f"must start with a letter, hold only letters, digits and hyphens, "
            f"and be at most {APP_NAME_MAX} characters (a Flower app name)",
        )


def check_package(package: object) -> None:
    text = str(package)
    if not text.isidentifier() or keyword.iskeyword(text) or not text.isascii():
        raise AnswerError("package_name", package, "must be a valid Python identifier")


def check_pattern(field: str, value: object, pattern: re.Pattern, allowed: str) -> None:
    if not pattern.match(str(value)):
        raise AnswerError(field, value, allowed)


def check_choice(field: str, value: object, allowed: list) -> None:
    options = [str(option) for option in allowed]
    if str(value) not in options:
        raise AnswerError(field, value, "must be one of " + ", ".join(options))


def checks(answers: dict, choices: dict[str, list] | None) -> list:
    """One zero-argument check per answer rule."""
    rules = [lambda f=field: check_text(f, answers[f])
             for field in ("project_name", "project_short_description", "full_name", "gpu_spec")]
    rules += [
        lambda: check_slug(answers["project_slug"]),
        lambda: check_package(answers["package_name"]),
        lambda: check_pattern("email", answers["email"], EMAIL, "must be an address like name@example.org"),
        lambda: check_pattern("flower_username", answers["flower_username"], ACCOUNT,
                              "must hold only letters, digits, hyphens and underscores"),
        lambda: check_pattern("version", answers["version"], VERSION, "must be a version like 1.0.0"),
        lambda: check_base_model(answers["base_model"]),
        lambda: check_target_modules(answers["lora_target_modules"]),
    ]
    rules += [lambda f=field: positive_int(f, answers[f]) for field in POSITIVE_INTEGERS]
    rules += [lambda f=field: boolean(f, answers[f]) for field in BOOLEANS]
    rules += [lambda f=field: check_choice(f, answers[f], choices[f])
              for field in CHOICES if choices and field in choices]
    rules += [lambda f=field: in_range(f, answers[f]) for field in RANGES]
    return rules


def problems(answers: dict, choices: dict[str, list] | None) -> list[AnswerError]:
    """Every bad answer (choices unchecked when `None`)."""
    found = []
    for rule in checks(answers, choices):
        try:
            rule()
        except AnswerError as error:
            found.append(error)
    if not found and boolean("lora_target_experts", answers["lora_target_experts"]):
        # PEFT adapts fused expert weights (`target_parameters`) with plain LoRA and no dropout only
        if float(answers["lora_dropout"]) != 0:
            found.append(AnswerError("lora_dropout", answers["lora_dropout"],
                                     "must be 0 when lora_target_experts = true"))
        if boolean("peft_use_dora", answers["peft_use_dora"]):
            found.append(AnswerError("peft_use_dora", answers["peft_use_dora"],
                                     "must be false when lora_target_experts = true"))
    if not found:
        max_lr, min_lr = float(answers["max_lr"]), float(answers["min_lr"])
        if min_lr > max_lr:
            found.append(
                AnswerError("min_lr", answers["min_lr"], f"must not exceed max_lr ({answers['max_lr']})")
            )
    return found


def validate(answers: dict, choices: dict[str, list] | None) -> None:
    """Raise `InvalidAnswers` naming every bad answer (choices unchecked when `None`)."""
    found = problems(answers, choices)
    if found:
        raise InvalidAnswers(found)


def main() -> int:
    answers = json.loads(ANSWERS_JSON)
    try:
        validate(answers, answers.get("_choices"))
    except InvalidAnswers as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
