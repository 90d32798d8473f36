"""Jinja filters that turn validated answers into TOML values (cookiecutter `_extensions`)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shlex
import sys
from pathlib import Path

from cookiecutter.exceptions import FailedHookException
from jinja2 import Environment, pass_environment
from jinja2.ext import Extension
from slugify import slugify

TEMPLATE_DIR = Path(__file__).parent
_PACKAGE_DIR = TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / "{{cookiecutter.package_name}}"
_LORA_TARGETS = _PACKAGE_DIR / "modeling" / "lora_targets.py"
_CHALLENGES = _PACKAGE_DIR / "challenges.py"
APP_NAME_MAX = 32
_NOT_ANSWERS = ("__prompts__", "__answers_validated")  # the `__` keys that are no answers
LONG_PREFIX, SHORT_PREFIX = "flowertune-", "ft-"
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


_PACKAGE = "flowertune_template_package"


def _package_module(name: str):
    """A module of the rendered package, imported from the template folder as a package of its
    own (so that its relative imports resolve), writing no bytecode beside it."""
    dont_write_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        if _PACKAGE not in sys.modules:
            spec = importlib.util.spec_from_file_location(
                _PACKAGE, _PACKAGE_DIR / "__init__.py", submodule_search_locations=[str(_PACKAGE_DIR)]
            )
            package = importlib.util.module_from_spec(spec)
            sys.modules[_PACKAGE] = package
            spec.loader.exec_module(package)
        return importlib.import_module(f"{_PACKAGE}.{name}")
    finally:
        sys.dont_write_bytecode = dont_write_bytecode


def _load_lora_targets():
    """The rendered package's target-module table, imported from the template folder."""
    return _load(_LORA_TARGETS, "flowertune_lora_targets")


def load_challenges():
    """The rendered package's table of the four challenges, imported from the template folder."""
    return _load(_CHALLENGES, "flowertune_challenges")


def challenge(name: object):
    """The facts of the challenge called `name` (dataset, nodes, fraction, benchmarks, ...).

    An unknown name gives the default challenge's facts, so that the defaults which depend on
    the challenge still render and `validate_answers` can name every bad answer at once.
    """
    challenges = load_challenges()
    return challenges.CHALLENGES.get(str(name).strip(), challenges.CHALLENGES[challenges.DEFAULT_CHALLENGE])


def federation_config(challenge_name: object, num_cpus: object, num_gpus: object) -> str:
    """The `--federation-config` value of the README's run command (see `challenges.py`)."""
    return load_challenges().federation_config(str(challenge_name), int(num_cpus), float(num_gpus))


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

    A name that is too long first shortens its leading `flowertune` to `ft`; if it is still too
    long, the model part keeps its leading words and gains 4 characters of a hash of the whole
    name, so that two models (an instruct and a base variant, say) never share a folder. A
    challenge title at the end is always kept, so that one model rendered for two challenges
    gets two folders.
    """
    slug = slugify(str(project_name))
    if len(slug) <= APP_NAME_MAX:
        return slug
    suffix = "-" + slugify(challenge(challenge_name).title)
    if str(challenge_name) == load_challenges().DEFAULT_CHALLENGE or not slug.endswith(suffix):
        suffix = ""
    body = slug[: len(slug) - len(suffix)]
    if body.startswith(LONG_PREFIX):
        body = SHORT_PREFIX + body[len(LONG_PREFIX):]
    if len(body + suffix) <= APP_NAME_MAX:
        return body + suffix
    digest = hashlib.sha1(slug.encode("utf-8")).hexdigest()[:4]
    return leading_words(body, APP_NAME_MAX - len(suffix) - len(digest) - 1) + "-" + digest + suffix


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


def communication_projection(answers: dict) -> str:
    """The communication the rendered run config will use, as the server plans it before
    round 1 (`budget.plan_communication`), where the model's config can be read here: a local
    model folder and torch, transformers and peft installed. Otherwise, when it is computed."""
    base_model = str(answers["base_model"])
    at_start = ("computed from the model's config when the run starts (the server logs it as "
                "`Communication plan:`)")
    if not (Path(base_model).expanduser() / "config.json").is_file():
        return at_start
    use_dora = toml_bool(answers["peft_use_dora"]) == "true"
    try:
        settings, loading, budget = (
            _package_module(name) for name in ("settings", "modeling.loading", "budget")
        )
        lora = settings.LoraSettings(
            r=int(answers["peft_lora_r"]), alpha=int(answers["peft_lora_alpha"]),
            dropout=float(answers["lora_dropout"]), use_dora=use_dora,
            target_modules=lora_target_modules(answers["lora_target_modules"], base_model),
            target_experts=toml_bool(answers["lora_target_experts"]) == "true",
        )
        shapes = loading.adapter_shapes(base_model, lora, trust_remote_code=False)
    except Exception as error:  # noqa: BLE001 - the run start computes it anyway
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return f"{at_start}; it could not be computed at render time ({reason})"
    plan = budget.plan_communication(
        shapes, transport_dtype=str(answers["transport_dtype"]),
        num_nodes=challenge(answers["challenge"]).num_supernodes,
        fraction_train=float(answers["fraction_fit"]), fraction_evaluate=float(answers["fraction_evaluate"]),
        rounds=int(answers["num_server_rounds"]), use_dora=use_dora,
    )
    return plan.summary()


@pass_environment
def validate_answers(environment: Environment, answers: dict) -> str:
    """Check every answer with the pre-generation hook's rules, before anything is written.

    Raises `FailedHookException` (which the cookiecutter CLI prints without a traceback) with
    one line per bad answer, naming the field, the value and what is allowed; first prints a
    command line that renders the same answers again, so that nothing typed at the prompts is
    lost.
    """
    hook = _load(_PRE_GEN_HOOK, "flowertune_pre_gen_project")
    spec = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text(encoding="utf-8"))
    try:
        hook.validate(answers, spec["_choices"])
    except hook.InvalidAnswers as error:
        print(f"Your answers are kept: fix {', '.join(error.fields)} in this command and run it.\n"
              f"  {rerun_command(given_answers(environment, spec, answers))}", file=sys.stderr)
        raise FailedHookException(str(error)) from None
    return "yes"


def cookiecutter_command() -> list[str]:
    """How the running cookiecutter was started: its own executable, else `python -m cookiecutter`."""
    program = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if program is not None and program.name == "cookiecutter":
        return [sys.argv[0]]
    return [sys.executable, "-m", "cookiecutter"]


def given_answers(environment: Environment, spec: dict, answers: dict) -> dict:
    """The answers worth repeating: every prompted one and every unprompted `__x` one, except
    those that still equal the default they were derived from (the project name from the
    model, say), so that they follow the fixed answers when rendered again."""
    kept = {}
    for key, value in answers.items():
        if key.startswith("_") and (not key.startswith("__") or key in _NOT_ANSWERS):
            continue
        default = spec.get(key)
        if isinstance(default, str) and "{{" in default:
            if environment.from_string(default).render(cookiecutter=answers) == str(value):
                continue
        kept[key] = value
    return kept


def rerun_command(answers: dict) -> str:
    """A `cookiecutter --no-input` command line that renders these answers again."""
    def text(value: object) -> str:
        return str(value).lower() if isinstance(value, bool) else str(value)

    given = [f"{key}={text(value)}" for key, value in answers.items()]
    return shlex.join([*cookiecutter_command(), "--no-input", str(TEMPLATE_DIR), *given])


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
        environment.filters["federation_config"] = federation_config
        environment.filters["communication_projection"] = communication_projection

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        """Turn an answer string with stray Jinja markup into an expression of its own text."""
        if name is not None or not _JINJA_MARKUP.search(source) or _REFERS_TO_ANSWERS.search(source):
            return source
        literals = self.environment.globals[LITERALS_GLOBAL]
        literals.append(source)
        return f"{{{{ {LITERALS_GLOBAL}[{len(literals) - 1}] }}}}"
