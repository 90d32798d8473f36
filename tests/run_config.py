"""The rendered default project's run config, flattened as Flower passes it, with overrides."""

from __future__ import annotations

import tomllib
from pathlib import Path


def flat(config: dict, prefix: str = "") -> dict:
    """`{"a": {"b": 1}}` -> `{"a.b": 1}`: the keys `context.run_config` holds."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def rendered_run_config(rendered_package, **overrides: object) -> dict:
    """`[tool.flwr.app.config]` of the default render (the project of `rendered_package`)."""
    project = Path(rendered_package("settings").__file__).parents[1]
    config = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    return {**flat(config["tool"]["flwr"]["app"]["config"]), **overrides}
