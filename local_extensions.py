"""Jinja filters that turn validated answers into TOML values (cookiecutter `_extensions`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from jinja2.ext import Extension

_LORA_TARGETS = (
    Path(__file__).parent
    / "{{cookiecutter.project_slug}}"
    / "{{cookiecutter.package_name}}"
    / "lora_targets.py"
)


def _load_lora_targets():
    """The rendered package's target-module table, imported from the template folder."""
    spec = importlib.util.spec_from_file_location("flowertune_lora_targets", _LORA_TARGETS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


class FlowerTuneExtension(Extension):
    """Registers the filters above."""

    def __init__(self, environment):
        super().__init__(environment)
        environment.filters["toml_string"] = toml_string
        environment.filters["toml_bool"] = toml_bool
        environment.filters["lora_target_modules"] = lora_target_modules
