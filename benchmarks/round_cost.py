"""Cost of a federated round: server memory, base model loads, and the gain of reusing the model.

Builds a random Qwen2-style model of about 0.45 billion parameters from a config (no download;
float32 weights, as built), renders the default baseline, and runs 3 rounds on 2 SuperNodes
through `flwr run` twice: with the base model reused across rounds (the default) and reloaded
every round. The adapter has rank 4: the server must hold, receive and average adapters, and
on a model this small the default rank 32 would make one adapter a twentieth of the weights
(on the 7B leaderboard models it is about 2%), so that this ratio would measure the adapter
rather than whether the server ever loads base weights. Prints the figures; the last line is

    server_rss_ratio=<x> client_loads=<n> clients=<m> reuse_speedup=<y>

server_rss_ratio: the server's peak RSS growth after its imports / the base model's weight size
(float32, as built from the config).
client_loads / clients: base model loads summed over client processes / client processes.
reuse_speedup: mean round time with reuse off / with reuse on.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit.flashcards import write_flashcards  # noqa: E402
from testkit.flower import LocalSuperLink  # noqa: E402
from testkit.render import render  # noqa: E402
from testkit.tiny_models import build_tiny_model  # noqa: E402

MODEL_SIZES = {
    "hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 10,
    "num_attention_heads": 16, "num_key_value_heads": 4,
}
OVERRIDES = {
    "num-server-rounds": 3,
    "train.save-every-round": 3,
    "train.seq-length": 256,
    "train.training-arguments.max-steps": 2,
    "train.training-arguments.per-device-train-batch-size": 1,
    "train.training-arguments.logging-steps": 1,
    "strategy.fraction-train": 1.0,
    "model.lora.peft-lora-r": 4,
    "model.lora.peft-lora-alpha": 8,
}


def weight_size_mb(model_dir: Path) -> float:
    return sum(path.stat().st_size for path in model_dir.glob("*.safetensors")) / 2**20


def run(workdir: Path, project: Path, model_dir: Path, data_dir: Path, reuse: bool) -> dict:
    results = workdir / f"results-reuse-{reuse}"
    with LocalSuperLink(workdir / f"home-{reuse}", num_supernodes=2) as superlink:
        superlink.start(cwd=workdir)
        outcome = superlink.run(project, {
            **OVERRIDES, "model.name": str(model_dir), "static.dataset.name": str(data_dir),
            "train.results-dir": str(results), "model.reuse-across-rounds": reuse,
        }, timeout=3000)
    if outcome.status != "finished:completed":
        sys.exit(f"run with reuse={reuse} ended {outcome.status}:\n{outcome.output[-3000:]}")
    return json.loads(next(results.glob("*/metrics.json")).read_text())


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        model_dir = build_tiny_model("qwen2", workdir / "model", **MODEL_SIZES)
        size_mb = weight_size_mb(model_dir)
        data_dir = write_flashcards(workdir / "data", count=16)
        project = render(workdir / "rendered")
        print(f"base model: {size_mb:.0f} MB of float32 weights", flush=True)
        reused = run(workdir, project, model_dir, data_dir, reuse=True)
        reloaded = run(workdir, project, model_dir, data_dir, reuse=False)

    totals = reused["totals"]
    growth = totals["server_peak_rss_mb"] - totals["server_rss_after_imports_mb"]
    mean_round = {name: sum(r["seconds"] for r in m["rounds"]) / len(m["rounds"])
                  for name, m in (("on", reused), ("off", reloaded))}
    print("server RSS at the end of each round: "
          + ", ".join(f"{r['server_rss_mb']:.0f}" for r in reused["rounds"]) + " MB")
    print(f"server RSS after imports {totals['server_rss_after_imports_mb']:.0f} MB, "
          f"peak {totals['server_peak_rss_mb']:.0f} MB (growth {growth:.0f} MB)")
    print(f"client peak RSS {totals['client_peak_rss_mb']:.0f} MB; communication "
          f"{totals['comm_total_mb']:.1f} MB in 3 rounds")
    print(f"mean round: {mean_round['on']:.1f} s with reuse, {mean_round['off']:.1f} s without; "
          f"base model loads without reuse: {reloaded['totals']['base_model_loads']}")
    print(f"server_rss_ratio={growth / size_mb:.4f} client_loads={totals['base_model_loads']} "
          f"clients={totals['client_processes']} reuse_speedup={mean_round['off'] / mean_round['on']:.2f}")


if __name__ == "__main__":
    main()
