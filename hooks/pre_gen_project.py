"""Validate every answer before anything is rendered; one line per bad answer, exit 1.

Importable as a module (`validate`, `problems`) for tests; cookiecutter runs it as a script
after substituting the answers below.
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
CHOICES = (
    "challenge", "quantization", "optimizer", "lr_scheduler_type", "transport_dtype", "license", "strategy",
)
# number answers: field -> (lowest, highest, lowest allowed, highest allowed, what is allowed)
RANGES = {
    "proximal_mu": (0.0, math.inf, True, False, "must be a number >= 0"),
    "server_learning_rate": (0.0, math.inf, False, False, "must be a positive number"),
    "server_momentum": (0.0, 1.0, True, False, "must be a number in [0, 1)"),
    "beta_1": (0.0, 1.0, True, False, "must be a number in [0, 1)"),
    "beta_2": (0.0, 1.0, True, False, "must be a number in [0, 1)"),
    "tau": (0.0, math.inf, False, False, "must be a positive number"),
    "fraction_evaluate": (0.0, 1.0, True, True, "must be a number in [0, 1]"),
    "validation_fraction": (0.0, 1.0, False, False, "must be a number in (0, 1)"),
}


class AnswerError(ValueError):
    """One bad answer: the field, the value and what is allowed."""

    def __init__(self, field: str, value: object, allowed: str) -> None:
        super().__init__(f"{field} = {value!r}: {allowed}")
        self.field = field


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
    if text in ("true", "false"):
        return text == "true"
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


def validate(answers: dict, choices: dict[str, list] | None) -> None:
    """Raise `AnswerError` for the first bad answer (choices unchecked when `None`)."""
    for field in ("project_name", "project_short_description", "full_name", "gpu_spec"):
        check_text(field, answers[field])
    slug = str(answers["project_slug"])
    if not APP_NAME.match(slug) or len(slug) > APP_NAME_MAX:
        raise AnswerError(
            "project_slug", slug,
            f"must start with a letter, hold only letters, digits and hyphens, "
            f"and be at most {APP_NAME_MAX} characters (a Flower app name)",
        )
    package = str(answers["package_name"])
    if not package.isidentifier() or keyword.iskeyword(package) or not package.isascii():
        raise AnswerError("package_name", package, "must be a valid Python identifier")
    if not EMAIL.match(str(answers["email"])):
        raise AnswerError("email", answers["email"], "must be an address like name@example.org")
    if not ACCOUNT.match(str(answers["flower_username"])):
        raise AnswerError(
            "flower_username", answers["flower_username"],
            "must hold only letters, digits, hyphens and underscores",
        )
    if not VERSION.match(str(answers["version"])):
        raise AnswerError("version", answers["version"], "must be a version like 1.0.0")
    check_base_model(answers["base_model"])
    check_target_modules(answers["lora_target_modules"])
    for field in POSITIVE_INTEGERS:
        positive_int(field, answers[field])
    for field in BOOLEANS:
        boolean(field, answers[field])
    for field in CHOICES if choices else ():
        allowed = [str(option) for option in choices[field]]
        if str(answers[field]) not in allowed:
            raise AnswerError(field, answers[field], "must be one of " + ", ".join(allowed))

    for field in RANGES:
        in_range(field, answers[field])
    num_gpus = number("num_gpus", answers["num_gpus"], "must be a non-negative number")
    if num_gpus < 0:
        raise AnswerError("num_gpus", answers["num_gpus"], "must be a non-negative number")
    dropout = number("lora_dropout", answers["lora_dropout"], "must be a number in [0, 1)")
    if not 0 <= dropout < 1:
        raise AnswerError("lora_dropout", answers["lora_dropout"], "must be a number in [0, 1)")
    if boolean("lora_target_experts", answers["lora_target_experts"]):
        # PEFT adapts fused expert weights (`target_parameters`) with plain LoRA and no dropout only
        if dropout != 0:
            raise AnswerError("lora_dropout", answers["lora_dropout"],
                              "must be 0 when lora_target_experts = true")
        if boolean("peft_use_dora", answers["peft_use_dora"]):
            raise AnswerError("peft_use_dora", answers["peft_use_dora"],
                              "must be false when lora_target_experts = true")
    fraction = number("fraction_fit", answers["fraction_fit"], "must be a number in (0, 1]")
    if not 0 < fraction <= 1:
        raise AnswerError("fraction_fit", answers["fraction_fit"], "must be a number in (0, 1]")
    rates = {}
    for field in ("max_lr", "min_lr"):
        rates[field] = number(field, answers[field], "must be a positive number")
        if rates[field] <= 0:
            raise AnswerError(field, answers[field], "must be a positive number")
    if rates["min_lr"] > rates["max_lr"]:
        raise AnswerError("min_lr", answers["min_lr"], f"must not exceed max_lr ({answers['max_lr']})")


def template_choices(answers: dict) -> dict[str, list] | None:
    """The choice lists of the template's own cookiecutter.json, where the hook can find it.

    cruft renders without `_repo_dir`, and `cookiecutter .` gives a path relative to a folder
    the hook does not run in; those answers already passed the same checks, choices included,
    in the template's Jinja extension (`validate_answers`).
    """
    spec_file = Path(answers.get("_repo_dir", "")) / "cookiecutter.json"
    if "_repo_dir" not in answers or not spec_file.is_absolute() or not spec_file.is_file():
        return None
    spec = json.loads(spec_file.read_text(encoding="utf-8"))
    return {field: spec[field] for field in CHOICES}


def main() -> int:
    answers = json.loads(ANSWERS_JSON)
    try:
        validate(answers, template_choices(answers))
    except AnswerError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
