"""Cost of FlexLoRA aggregation on one Mistral-7B layer: low-rank (QR + small SVD) against dense SVD.

    python benchmarks/aggregation_cost.py [--clients 4] [--rank 32]

Random client factors for the seven adapted modules of one transformer layer of Mistral-7B
(hidden 4096, MLP 14336, 32 query heads and 8 key-value heads of 128) are aggregated two ways:

- dense: per module, the example-weighted sum of B_k A_k formed as an out x in float32 matrix,
  then a full `torch.linalg.svd(..., full_matrices=False)` truncated to the rank. A wide matrix
  (down_proj, k_proj, v_proj) is decomposed as its transpose, which MKL does faster (2 to 15
  times in trials on 2 cores), so that the dense way pays no cost it need not;
- low-rank: `flexlora_aggregate` of the rendered template (QRs of the stacked factors and an
  SVD of the (K*r) x (K*r) core, in float64), which never forms the dense matrix.

Each way runs in a fresh process of its own (spawned, so no memory is inherited), with torch
using every core: the dense way once (it takes minutes), the low-rank way 5 times (the median
counts; a single run of under a second is at the mercy of other load on the machine). Modules
of the same shape cost the same, so each way aggregates one module of each distinct shape
(q_proj, k_proj, gate_proj, down_proj) and the layer's time counts each shape as many times as
the layer has it (q/o, k/v, gate/up): the same figure as the whole layer, in half the time. Memory is
that process's peak resident set (`ru_maxrss`), and the part the aggregation added: the peak
after it minus the peak before it (imports and client factors). The last line is

    speedup=<dense seconds / low-rank seconds> max_rel_error=<largest relative Frobenius error>

where the error of a module is ||B'A' (low-rank) - B'A' (dense)||_F / ||B'A' (dense)||_F.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from testkit.render import render  # noqa: E402

LAYER = "base_model.model.model.layers.0"
# Module -> (out, in) of one Mistral-7B layer.
MODULE_SHAPES = {
    "self_attn.q_proj": (4096, 4096),
    "self_attn.k_proj": (1024, 4096),
    "self_attn.v_proj": (1024, 4096),
    "self_attn.o_proj": (4096, 4096),
    "mlp.gate_proj": (14336, 4096),
    "mlp.up_proj": (14336, 4096),
    "mlp.down_proj": (4096, 14336),
}
SEED = 0
RUNS = {"low-rank": 5, "dense": 1}


def client_states(clients: int, rank: int) -> tuple[list[dict[str, np.ndarray]], list[int]]:
    """Random float32 adapter states of the layer, keyed as PEFT keys them, and example counts."""
    rng = np.random.default_rng(SEED)
    states = [
        {
            f"{LAYER}.{module}.lora_{factor}.weight": rng.standard_normal(shape, dtype=np.float32)
            for module, (out_features, in_features) in MODULE_SHAPES.items()
            for factor, shape in (("A", (rank, in_features)), ("B", (out_features, rank)))
        }
        for _ in range(clients)
    ]
    return states, [int(count) for count in rng.integers(100, 1000, size=clients)]


def distinct_shapes() -> dict[str, int]:
    """One module of each distinct shape, and how many modules of the layer have that shape."""
    counts: dict[tuple[int, int], list[str]] = {}
    for module, shape in MODULE_SHAPES.items():
        counts.setdefault(shape, []).append(module)
    return {modules[0]: len(modules) for modules in counts.values()}


def module_states(states: list[dict[str, np.ndarray]], module: str) -> list[dict[str, np.ndarray]]:
    """The clients' states restricted to one module's factors."""
    return [{key: value for key, value in state.items() if f".{module}.lora_" in key} for state in states]


def dense_aggregate(states, weights, rank: int) -> dict[str, np.ndarray]:
    """Per module, the dense weighted sum of B_k A_k, fully decomposed (tall side first) and truncated."""
    fractions = [weight / sum(weights) for weight in weights]
    aggregate = {}
    modules = {key.split(".lora_")[0].removeprefix(LAYER + ".") for key in states[0]}
    for module in sorted(modules):
        a_key, b_key = f"{LAYER}.{module}.lora_A.weight", f"{LAYER}.{module}.lora_B.weight"
        dense = sum(
            fraction * torch.from_numpy(state[b_key]) @ torch.from_numpy(state[a_key])
            for fraction, state in zip(fractions, states, strict=True)
        )
        wide = dense.shape[0] < dense.shape[1]
        u, singular_values, v_t = torch.linalg.svd(dense.T if wide else dense, full_matrices=False)
        if wide:
            u, v_t = v_t.T, u.T
        root = singular_values[:rank].sqrt()
        aggregate[b_key] = (u[:, :rank] * root).numpy()
        aggregate[a_key] = (root[:, None] * v_t[:rank]).numpy()
    return aggregate


def measure(way: str, project: str, clients: int, rank: int) -> dict:
    """Run one way in this (fresh) process: its seconds, peak RSS figures and resulting factors."""
    torch.set_num_threads(os.cpu_count())
    if way == "low-rank":
        sys.path.insert(0, project)
        package = Path(project).name.replace("-", "_")
        flexlora = importlib.import_module(f"{package}.strategies.flexlora")
        aggregate = functools.partial(flexlora.flexlora_aggregate, rank=rank, device="cpu")
    else:
        aggregate = functools.partial(dense_aggregate, rank=rank)
    states, weights = client_states(clients, rank)
    peak_before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seconds, result = 0.0, {}
    for module, count in distinct_shapes().items():
        timings = []
        for _ in range(RUNS[way]):
            start = time.perf_counter()
            module_result = aggregate(module_states(states, module), weights)
            timings.append(time.perf_counter() - start)
        seconds += count * statistics.median(timings)
        result.update(module_result)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mb": peak_mb, "added_mb": peak_mb - peak_before_mb, "result": result}


def relative_error(low_rank: dict[str, np.ndarray], dense: dict[str, np.ndarray], module: str) -> float:
    """||B'A' (low-rank) - B'A' (dense)||_F / ||B'A' (dense)||_F, the products formed in float64."""
    a_key, b_key = f"{LAYER}.{module}.lora_A.weight", f"{LAYER}.{module}.lora_B.weight"
    dense_product = torch.from_numpy(dense[b_key]).double() @ torch.from_numpy(dense[a_key]).double()
    low_rank_product = torch.from_numpy(low_rank[b_key]).double() @ torch.from_numpy(low_rank[a_key]).double()
    return float(torch.linalg.norm(low_rank_product - dense_product) / torch.linalg.norm(dense_product))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=4, help="clients aggregated (at least 2)")
    parser.add_argument("--rank", type=int, default=32, help="LoRA rank r")
    args = parser.parse_args()
    if args.clients < 2:
        parser.error("--clients must be at least 2")

    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        project = str(render(Path(tmp) / "render"))
        figures = {}
        for way in ("low-rank", "dense"):
            with spawn.Pool(1) as pool:
                figures[way] = pool.apply(measure, (way, project, args.clients, args.rank))

    print(f"one Mistral-7B layer ({len(MODULE_SHAPES)} modules), {args.clients} clients of rank "
          f"{args.rank}, CPU, {os.cpu_count()} torch threads in each way's own spawned process")
    print("memory: peak RSS (ru_maxrss) of that process; 'added': peak after the aggregation "
          "minus peak before it (imports and client factors)")
    labels = {"dense": "dense (weighted sum + full SVD, float32)",
              "low-rank": "low-rank (flexlora_aggregate, float64)"}
    for way in ("dense", "low-rank"):
        figure = figures[way]
        runs = "one run" if RUNS[way] == 1 else f"median of {RUNS[way]} runs"
        runs += " per distinct shape, the layer's total"
        print(f"{labels[way]}: {figure['seconds']:.3f} s ({runs}), peak RSS {figure['peak_mb']:.0f} MB "
              f"(added {figure['added_mb']:.0f} MB)")
    errors = {module: relative_error(figures["low-rank"]["result"], figures["dense"]["result"], module)
              for module in distinct_shapes()}
    for module, count in distinct_shapes().items():
        out_features, in_features = MODULE_SHAPES[module]
        print(f"  {module} {out_features}x{in_features} (x{count} in the layer): "
              f"relative error {errors[module]:.2e}")
    speedup = figures["dense"]["seconds"] / figures["low-rank"]["seconds"]
    print(f"speedup={speedup:.2f} max_rel_error={max(errors.values()):.2e}")


if __name__ == "__main__":
    main()
