"""Jinja filters that turn validated answers into TOML values (cookiecutter `_extensions`)."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import sys
from pathlib import Path

from cookiecutter.exceptions import FailedHookException
from jinja2.ext import Extension
from slugify import slugify

TEMPLATE_DIR = Path(__file__).parent
_PACKAGE_DIR = TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / "{{cookiecutter.package_name}}"
_LORA_TARGETS = _PACKAGE_DIR / "modeling" / "lora_targets.py"
_CHALLENGES = _PACKAGE_DIR / "challenges.py"
APP_NAME_MAX = 32
_PRE_GEN_HOOK = TEMPLATE_DIR / "hooks" / "pre_gen_project.py"


def _load(path: Path, name: str):
    """Import a plain Python file of the template as a module (registered, for dataclasses).

    No bytecode is written beside it: a `__pycache__` in the template's package folder would be
    copied into every rendered project.
    """
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    dont_write_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = dont_write_bytecode
    return module


def _load_lora_targets():
    """The rendered package's target-module table, imported from the template folder."""
    return _load(_LORA_TARGETS, "flowertune_lora_targets")


def load_challenges():
    """The rendered package's table of the four challenges, imported from the template folder."""
    return _load(_CHALLENGES, "flowertune_challenges")


def challenge(name: object):
    """The facts of the challenge called `name` (dataset, nodes, fraction, benchmarks, ...)."""
    try:
        return load_challenges().challenge(str(name))
    except ValueError as error:
        raise FailedHookException(f"ERROR: {error}") from None


def leading_words(slug: str, max_length: int) -> str:
    """The longest run of whole leading words of a slug that fits in `max_length`."""
    words = slug.split("-")
    kept = words[:1]
    for word in words[1:]:
        if len("-".join([*kept, word])) > max_length:
            break
        kept.append(word)
    return "-".join(kept)[:max_length]


def app_slug(project_name: object, challenge_name: object) -> str:
    """A Flower app name (at most 32 characters) from the project name.

    When the name ends with the challenge's title and is too long, the model part is shortened
    instead of the title, so that one model rendered for two challenges gets two folders.
    """
    slug = slugify(str(project_name))
    if len(slug) <= APP_NAME_MAX:
        return slug
    suffix = "-" + slugify(challenge(challenge_name).title)
    if str(challenge_name) != load_challenges().DEFAULT_CHALLENGE and slug.endswith(suffix):
        return leading_words(slug[: -len(suffix)], APP_NAME_MAX - len(suffix)) + suffix
    return slugify(str(project_name), max_length=APP_NAME_MAX, word_boundary=True)


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
    field, the value and what is allowed; first prints a command line that renders the same
    answers again, so that nothing typed at the prompts is lost.
    """
    hook = _load(_PRE_GEN_HOOK, "flowertune_pre_gen_project")
    choices = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text(encoding="utf-8"))
    try:
        hook.validate(answers, {field: choices[field] for field in hook.CHOICES})
    except hook.AnswerError as error:
        print(f"Your answers are kept: fix {error.field} in this command and run it.\n"
              f"  {rerun_command(answers)}", file=sys.stderr)
        raise FailedHookException(f"ERROR: {error}") from None
    return "yes"


def rerun_command(answers: dict) -> str:
    """A `cookiecutter --no-input` command line that renders these answers again."""
    def text(value: object) -> str:
        return str(value).lower() if isinstance(value, bool) else str(value)

    given = [f"{key}={text(value)}" for key, value in answers.items() if not key.startswith("_")]
    return shlex.join(["cookiecutter", "--no-input", str(TEMPLATE_DIR), *given])


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
        environment.filters["challenge"] = challenge
        environment.filters["app_slug"] = app_slug

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        """Turn an answer string with stray Jinja markup into an expression of its own text."""
        if name is not None or not _JINJA_MARKUP.search(source) or _REFERS_TO_ANSWERS.search(source):
            return source
        literals = self.environment.globals[LITERALS_GLOBAL]
        literals.append(source)
        return f"{{{{ {LITERALS_GLOBAL}[{len(literals) - 1}] }}}}"
