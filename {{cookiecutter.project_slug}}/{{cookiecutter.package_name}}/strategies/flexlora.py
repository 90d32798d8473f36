"""FlexLoRA aggregation (Bai et al. 2024): the weighted mean of the clients' LoRA products, at rank r.

Each adapted layer's update is B_k A_k on client k. The server takes the example-weighted mean
sum_k p_k B_k A_k and keeps its best rank-r approximation (truncated SVD), split evenly into new
factors. The mean has rank at most K*r, so the dense out x in matrix is never formed: with the
stacked factors B = [B_1 ... B_K] and A = [p_1 A_1; ...; p_K A_K], the QRs B = Q_b R_b and
A^T = Q_a R_a and the SVD of the small core R_b R_a^T = U S V^T give

    B' = Q_b U_r S_r^(1/2)    A' = S_r^(1/2) V_r^T Q_a^T,

the factors a full SVD of the dense mean gives (up to signs). Every other adapter entry (DoRA's
`lora_magnitude_vector`, biases) is the example-weighted mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

LORA_A_SUFFIX = ".lora_A.weight"
LORA_B_SUFFIX = ".lora_B.weight"


def flexlora_aggregate(
    states: Sequence[Mapping[str, np.ndarray]],
    weights: Sequence[float],
    rank: int,
    device: str | torch.device | None = None,
) -> dict[str, np.ndarray]:
    """Aggregate PEFT adapter states (keys as `get_peft_model_state_dict` gives them) with FlexLoRA.

    `weights` are the clients' example counts (any positive numbers; normalised here). `rank` is
    the adapter config's r: every factor comes back r wide, zero-padded where the mean has a
    lower rank; clients may send factors of other ranks. `device` defaults to CUDA when
    available. Returns float32 arrays, in the input shapes and key order.
    """
    fractions = _fractions(weights, len(states))
    if rank < 1:
        raise ValueError(f"FlexLoRA: rank must be at least 1, got {rank}")
    modules = _factorised_modules(states)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    aggregate = {}
    for module in modules:
        a_key, b_key = module + LORA_A_SUFFIX, module + LORA_B_SUFFIX
        new_b, new_a = mean_product_factors(
            [state[b_key] for state in states], [state[a_key] for state in states], fractions, rank, device
        )
        aggregate[b_key], aggregate[a_key] = _float32_numpy(new_b), _float32_numpy(new_a)
    for key in states[0]:
        if key not in aggregate:
            aggregate[key] = _weighted_mean([state[key] for state in states], fractions, key)
    return {key: aggregate[key] for key in states[0]}


def mean_product_factors(
    b_factors: Sequence[np.ndarray],
    a_factors: Sequence[np.ndarray],
    fractions: Sequence[float],
    rank: int,
    device: str | torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank-`rank` factors (B', A') of sum_k fractions[k] * B_k A_k, without forming the product.

    float64 tensors on `device`, zero-padded to `rank` where the mean has a lower rank. Each
    column of B' has its largest entry positive (the sign an SVD leaves open), so the result
    does not depend on the clients' order.
    """
    stacked_b = torch.cat([_float64(b, device) for b in b_factors], dim=1)
    weighted_a = zip(fractions, a_factors, strict=True)
    stacked_a = torch.cat([fraction * _float64(a, device) for fraction, a in weighted_a])
    q_b, r_b = torch.linalg.qr(stacked_b)
    q_a, r_a = torch.linalg.qr(stacked_a.T)
    u, singular_values, v_t = torch.linalg.svd(r_b @ r_a.T, full_matrices=False)
    kept = min(rank, singular_values.numel())
    root = singular_values[:kept].sqrt()
    new_b = q_b @ (u[:, :kept] * root)
    new_a = (root[:, None] * v_t[:kept]) @ q_a.T
    largest = new_b.gather(0, new_b.abs().argmax(dim=0, keepdim=True))
    signs = torch.where(largest < 0, -1.0, 1.0).to(new_b.dtype)
    new_b, new_a = new_b * signs, new_a * signs.T
    padded_b = new_b.new_zeros(new_b.shape[0], rank)
    padded_a = new_a.new_zeros(rank, new_a.shape[1])
    padded_b[:, :kept], padded_a[:kept] = new_b, new_a
    return padded_b, padded_a


def _fractions(weights: Sequence[float], num_states: int) -> list[float]:
    """The clients' weights normalised to sum to 1, after checking them against the states."""
    if num_states == 0:
        raise ValueError("FlexLoRA: no client states to aggregate")
    if len(weights) != num_states:
        raise ValueError(f"FlexLoRA: {len(weights)} weights for {num_states} client states")
    if not all(np.isfinite(weight) and weight > 0 for weight in weights):
        raise ValueError(f"FlexLoRA: weights must be positive and finite, got {list(weights)}")
    total = float(sum(weights))
    return [float(weight) / total for weight in weights]


def _factorised_modules(states: Sequence[Mapping[str, np.ndarray]]) -> list[str]:
    """The modules with a lora_A/lora_B pair, after checking that every state has the same keys."""
    keys = set(states[0])
    for index, state in enumerate(states[1:], start=1):
        if set(state) != keys:
            missing, extra = sorted(keys - set(state)), sorted(set(state) - keys)
            raise ValueError(
                f"FlexLoRA: client state {index} has other keys than client state 0: "
                f"missing {missing[:3]}, extra {extra[:3]}"
            )
    a_modules = {key.removesuffix(LORA_A_SUFFIX) for key in keys if key.endswith(LORA_A_SUFFIX)}
    b_modules = {key.removesuffix(LORA_B_SUFFIX) for key in keys if key.endswith(LORA_B_SUFFIX)}
    if a_modules != b_modules:
        raise ValueError(
            f"FlexLoRA: lora_A without lora_B in {sorted(a_modules - b_modules)[:3]}, "
            f"lora_B without lora_A in {sorted(b_modules - a_modules)[:3]}"
        )
    for module in sorted(a_modules):
        out_features, in_features = _product_shape(states[0], module, 0)
        for index, state in enumerate(states[1:], start=1):
            if _product_shape(state, module, index) != (out_features, in_features):
                raise ValueError(
                    f"FlexLoRA: {module} is {_product_shape(state, module, index)} (out, in) in client "
                    f"state {index} but {(out_features, in_features)} in client state 0"
                )
    return sorted(a_modules)


def _product_shape(state: Mapping[str, np.ndarray], module: str, index: int) -> tuple[int, int]:
    """(out, in) of the module's update B A, after checking that A is (r, in) and B (out, r)."""
    a_shape, b_shape = np.shape(state[module + LORA_A_SUFFIX]), np.shape(state[module + LORA_B_SUFFIX])
    if len(a_shape) != 2 or len(b_shape) != 2 or a_shape[0] != b_shape[1]:
        raise ValueError(
            f"FlexLoRA: {module} of client state {index} has lora_A {a_shape} and lora_B {b_shape}, "
            "not (r, in) and (out, r)"
        )
    return b_shape[0], a_shape[1]


def _weighted_mean(arrays: Sequence[np.ndarray], fractions: Sequence[float], key: str) -> np.ndarray:
    """sum_k fractions[k] * arrays[k], accumulated in float64, as float32."""
    shapes = {np.shape(array) for array in arrays}
    if len(shapes) > 1:
        raise ValueError(f"FlexLoRA: {key} has different shapes across clients: {sorted(shapes)}")
    weighted = zip(fractions, arrays, strict=True)
    mean = sum(fraction * np.asarray(array, dtype=np.float64) for fraction, array in weighted)
    return np.asarray(mean, dtype=np.float32)


def _float64(array: np.ndarray, device: str | torch.device) -> torch.Tensor:
    """A float64 tensor on `device` with a copy of `array` (of any float dtype)."""
    return torch.from_numpy(np.array(array, dtype=np.float64)).to(device)


def _float32_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.to(device="cpu", dtype=torch.float32).numpy()
