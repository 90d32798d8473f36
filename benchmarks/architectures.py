"""Census of the decoder architectures of the pinned transformers: does each train with `auto`?

For every architecture transformers maps to causal LM (less those left out, each printed with
its reason: encoder-decoders, encoders, audio/music and other non-chat models), builds a tiny
random model from that architecture's config and runs it through the default render's own path
(`testkit/architectures.py`): the server's initial adapter from the config alone, a 4-bit client
with LoRA on the `auto` targets, a training step, the adapter saved from its arrays and reloaded
as the leaderboard loads it, and one greedy token through the evaluation engine. Prints a table
(architecture, class, targets, adapter tensors, outcome); the last line is

    architectures=<N> trained=<M>

`--write-readme` also writes the table of the trained architectures into the template's
README.md, between its census markers (`tests/test_architectures.py` checks that table).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import io
import os
import sys
import tempfile
import time
import tomllib
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # the table alone, no progress bars between its rows
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testkit.architectures import (  # noqa: E402
    census_architectures,
    readme_with_table,
    run_census,
)
from testkit.render import render  # noqa: E402
from testkit.tiny_models import train_tokenizer  # noqa: E402
from tests.run_config import flat  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-readme", action="store_true", help="write the table into README.md")
    parser.add_argument("architectures", nargs="*", help="only these (default: the whole census)")
    args = parser.parse_args()

    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    included, excluded = census_architectures()
    with tempfile.TemporaryDirectory() as tmp:
        project = render(Path(tmp))
        sys.path.insert(0, str(project))
        name = project.name.replace("-", "_")

        def package(module: str):
            return importlib.import_module(f"{name}.{module}")

        pyproject = tomllib.loads((project / "pyproject.toml").read_text())
        config = flat(pyproject["tool"]["flwr"]["app"]["config"])
        tokenizer = train_tokenizer()
        gc.freeze()  # the Trainer collects garbage after each run: skip the imported objects
        print(f"{'architecture':26} {'class':40} {'tensors':>7}  {'outcome':30} targets", flush=True)
        started = time.monotonic()
        table = sys.stdout
        with contextlib.redirect_stdout(io.StringIO()):  # the Trainer's log lines stay out of the table
            rows = run_census(package, config, tokenizer, args.architectures or included, lambda row: print(
                f"{row.architecture:26} {row.model_class:40} {row.adapter_tensors:7}  {row.outcome:30} "
                f"{row.targets}", file=table, flush=True,
            ))
    print(f"\nleft out ({len(excluded)}):")
    for model_type, reason in excluded.items():
        print(f"  {model_type:26} {reason}")
    if args.write_readme:
        if args.architectures:
            sys.exit("--write-readme needs the whole census")
        readme = ROOT / "README.md"
        text = readme_with_table(readme.read_text(encoding="utf-8"), rows, excluded)
        readme.write_text(text, encoding="utf-8")
        print(f"wrote the table into {readme}")
    print(f"census time: {time.monotonic() - started:.0f} s")
    print(f"architectures={len(rows)} trained={sum(row.trained for row in rows)}")


if __name__ == "__main__":
    main()
