"""Demo: render the default baseline and train two federated rounds offline on a tiny model.

    python -m testkit.demo [--output DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from pathlib import Path

from .flashcards import SAMPLE_FLASHCARDS_DIR
from .flower import LocalSuperLink
from .render import SMOKE_OVERRIDES, render
from .tiny_models import build_tiny_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("demo-output"))
    output = parser.parse_args(argv).output.resolve()
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(parents=True)

    print("1/3 Rendering the default baseline, sized for this machine ...", flush=True)
    project = render(output / "rendered", num_cpus=1, num_gpus=0.0, gpu_spec=machine())
    print("2/3 Building a tiny random Mistral-style model ...", flush=True)
    model_dir = build_tiny_model("mistral", output / "tiny-mistral")
    print("3/3 Training two federated rounds with `flwr run` (2 SuperNodes) ...", flush=True)
    results = output / "results"
    with LocalSuperLink(output / "flwr-home", num_supernodes=2) as superlink:
        superlink.start(cwd=project)
        outcome = superlink.run(project, {
            **SMOKE_OVERRIDES,
            "model.name": str(model_dir),
            "static.dataset.name": str(SAMPLE_FLASHCARDS_DIR),
            "train.results-dir": str(results),
        }, progress=print_progress)
    log_file = output / "run.log"
    log_file.write_text(outcome.output, encoding="utf-8")
    adapters = sorted(results.glob("*/peft_2"))
    print(f"Rendered project: {project}")
    print(f"Run log:          {log_file}")
    print(f"Run status:       {outcome.status}")
    if outcome.status != "finished:completed" or not adapters:
        print("The demo run failed; see the run log.", file=sys.stderr)
        return 1
    run_dir = adapters[-1].parent
    print(f"Global adapter:   {adapters[-1]}")
    print(f"Round metrics:    {run_dir / 'metrics.json'}")
    print(f"Loss plot:        {run_dir / 'train_loss.png'}")
    print(f"Leaderboard:      {run_dir / 'leaderboard.json'} (rules kept or broken)")
    print(f"This demo trained a tiny random model on 2 simulated SuperNodes, 1 CPU each, on {machine()}.")
    print("A leaderboard run uses the challenge's 20 SuperNodes and a real base model: see the "
          f"rendered README ({project / 'README.md'}), Set-up and Run.")
    return 0


PROGRESS = re.compile(r"\[ROUND \d+/\d+\]|Communication: round|Saved the global adapter|Run summary")


def print_progress(line: str) -> None:
    """Show the run's round markers as they stream, so a long wait is not silent."""
    if PROGRESS.search(line):
        print("    " + re.sub(r"\x1b\[[0-9;]*m", "", line).strip(), flush=True)


def machine() -> str:
    """This machine, in a few words (the README's hardware line)."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} CPU cores, {gpu}"


if __name__ == "__main__":
    sys.exit(main())
