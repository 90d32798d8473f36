"""Jinja filters that turn validated answers into TOML values (cookiecutter `_extensions`)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

from cookiecutter.exceptions import FailedHookException
from jinja2.ext import Extension

TEMPLATE_DIR = Path(__file__).parent
_LORA_TARGETS = (
    TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / "{{cookiecutter.package_name}}" / "lora_targets.py"
)
_PRE_GEN_HOOK = TEMPLATE_DIR / "hooks" / "pre_gen_project.py"


def _load(path: Path, name: str):
    """Import a plain Python file of the template as a module."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load_lora_targets():
    """The rendered package's target-module table, imported from the template folder."""
    return _load(_LORA_TARGETS, "flowertune_lora_targets")


def toml_string(value: object) -> str:
    """A TOML basic string holding `value` exactly (quotes, backslashes, newlines)."""
    escaped = []
    for char in str(value):
        if char in ('"', "\\"):
            escaped.append("\\" + char)
        elif char in "\b\t\n\f\r":
            escaped.append({"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def toml_bool(value: object) -> str:
    """`true`/`false` from a JSON boolean or the strings of older answer files."""
    return "true" if str(value).strip().lower() in ("true", "1", "yes", "y") else "false"


def lora_target_modules(answer: object, base_model: object) -> str:
    """The config value of `model.lora.target-modules` for an answer and a base model."""
    return _load_lora_targets().resolve_target_modules(str(base_model), str(answer))


def validate_answers(answers: dict) -> str:
    """Check every answer with the pre-generation hook's rules, before anything is written.

    Raises `FailedHookException` (which the cookiecutter CLI prints as one line) naming the
    field, the value and what is allowed.
    """
    hook = _load(_PRE_GEN_HOOK, "flowertune_pre_gen_project")
    choices = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text(encoding="utf-8"))
    try:
        hook.validate(answers, {field: choices[field] for field in hook.CHOICES})
    except hook.AnswerError as error:
        raise FailedHookException(f"ERROR: {error}") from None
    return "yes"


# An answer is rendered as Jinja only when it refers to other answers ({{ cookiecutter.x }});
# any other braces in it (`{{`, `{%`, `{#`) are the user's text and are kept as typed.
_REFERS_TO_ANSWERS = re.compile(r"\{[{%].*?\bcookiecutter\b", re.S)
_JINJA_MARKUP = re.compile(r"\{[{%#]")
LITERALS_GLOBAL = "_flowertune_literal_answers"


class FlowerTuneExtension(Extension):
    """Registers the filters above and keeps literal braces in answers literal."""

    def __init__(self, environment):
        super().__init__(environment)
        environment.globals[LITERALS_GLOBAL] = []
        environment.filters["toml_string"] = toml_string
        environment.filters["toml_bool"] = toml_bool
        environment.filters["lora_target_modules"] = lora_target_modules
        environment.filters["validate_answers"] = validate_answers

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        """Turn an answer string with stray Jinja markup into an expression of its own text."""
        if name is not None or not _JINJA_MARKUP.search(source) or _REFERS_TO_ANSWERS.search(source):
            return source
        literals = self.environment.globals[LITERALS_GLOBAL]
        literals.append(source)
        return f"{{{{ {LITERALS_GLOBAL}[{len(literals) - 1}] }}}}"
