"""FlexLoRA aggregation against the dense truncated SVD it replaces, and on PEFT's adapter keys."""

from __future__ import annotations

import numpy as np
import pytest
import torch

MODULE = "base_model.model.model.layers.0.self_attn.q_proj"
A_KEY, B_KEY = f"{MODULE}.lora_A.weight", f"{MODULE}.lora_B.weight"


@pytest.fixture(scope="module")
def flexlora(rendered_package):
    return rendered_package("strategies.flexlora")


def client_factors(rng, clients: int, out_features: int, in_features: int, rank: int):
    """Per client, a random (B, A) pair of shapes (out, rank) and (rank, in), in float64."""
    return [(rng.normal(size=(out_features, rank)), rng.normal(size=(rank, in_features)))
            for _ in range(clients)]


def dense_best_rank_r(factors, weights, rank):
    """The dense weighted mean of B_k A_k, its rank-`rank` truncation and its singular vectors."""
    fractions = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    mean = sum(p * b @ a for p, (b, a) in zip(fractions, factors, strict=True))
    u, s, v_t = np.linalg.svd(mean, full_matrices=False)
    return u[:, :rank] * s[:rank] @ v_t[:rank], u[:, :rank], s[:rank], v_t[:rank]


def aggregate_factors(flexlora, factors, weights, rank):
    """(B', A') from `mean_product_factors`, in float64 NumPy."""
    new_b, new_a = flexlora.mean_product_factors(
        [b for b, _ in factors], [a for _, a in factors], np.asarray(weights) / np.sum(weights), rank, "cpu"
    )
    return new_b.numpy(), new_a.numpy()


def states_of(factors):
    return [{A_KEY: a.astype(np.float32), B_KEY: b.astype(np.float32)} for b, a in factors]


def relative_error(actual, expected):
    return np.linalg.norm(actual - expected) / np.linalg.norm(expected)


@pytest.mark.parametrize(
    ("clients", "out_features", "in_features", "rank"),
    [(3, 24, 16, 4), (2, 30, 6, 4), (4, 7, 40, 3), (5, 64, 48, 8)],
)
def test_factors_are_the_dense_mean_best_rank_r_approximation(
    flexlora, clients, out_features, in_features, rank
):
    rng = np.random.default_rng(clients * 100 + rank)
    factors = client_factors(rng, clients, out_features, in_features, rank)
    weights = rng.integers(1, 50, size=clients)
    best, u, s, v_t = dense_best_rank_r(factors, weights, rank)
    new_b, new_a = aggregate_factors(flexlora, factors, weights, rank)

    assert new_b.shape == (out_features, rank) and new_a.shape == (rank, in_features)
    assert relative_error(new_b @ new_a, best) < 1e-10
    signs = np.sign(np.sum(new_b * u, axis=0))
    np.testing.assert_allclose(new_b, u * np.sqrt(s) * signs, atol=1e-9)
    np.testing.assert_allclose(new_a, (np.sqrt(s) * signs)[:, None] * v_t, atol=1e-9)


def test_singular_values_are_split_evenly_over_orthogonal_factors(flexlora):
    rng = np.random.default_rng(1)
    factors = client_factors(rng, 3, 32, 20, 4)
    _, _, s, _ = dense_best_rank_r(factors, [5, 1, 2], 4)
    new_b, new_a = aggregate_factors(flexlora, factors, [5, 1, 2], 4)
    np.testing.assert_allclose(new_b.T @ new_b, np.diag(s), atol=1e-10)
    np.testing.assert_allclose(new_a @ new_a.T, np.diag(s), atol=1e-10)


def test_aggregate_of_one_client_keeps_its_update(flexlora):
    rng = np.random.default_rng(2)
    factors = client_factors(rng, 1, 24, 16, 4)
    merged = flexlora.flexlora_aggregate(states_of(factors), [7], rank=4, device="cpu")
    b, a = factors[0]
    assert relative_error(merged[B_KEY] @ merged[A_KEY], b @ a) < 1e-6


def test_example_weights_decide_the_mean(flexlora):
    rng = np.random.default_rng(3)
    states = states_of(client_factors(rng, 3, 24, 16, 4))

    def product(weights, chosen=states):
        merged = flexlora.flexlora_aggregate(chosen, weights, rank=4, device="cpu")
        return merged[B_KEY].astype(np.float64) @ merged[A_KEY]

    assert relative_error(product([3, 2, 1]), product([30, 20, 10])) < 1e-6
    assert relative_error(product([3, 2, 1]), product([1, 2, 3])) > 0.1
    assert relative_error(product([1e-12, 2, 1]), product([2, 1], states[1:])) < 1e-6


def test_result_does_not_depend_on_the_clients_order_and_repeats_exactly(flexlora):
    rng = np.random.default_rng(4)
    states = states_of(client_factors(rng, 3, 24, 16, 4))
    merged = flexlora.flexlora_aggregate(states, [1, 2, 3], rank=4, device="cpu")
    reordered = flexlora.flexlora_aggregate(states[::-1], [3, 2, 1], rank=4, device="cpu")
    again = flexlora.flexlora_aggregate(states, [1, 2, 3], rank=4, device="cpu")
    for key in merged:
        np.testing.assert_allclose(merged[key], reordered[key], atol=1e-5)
        np.testing.assert_array_equal(merged[key], again[key])


def test_dora_magnitudes_are_weighted_means_on_peft_keys(flexlora):
    from peft import LoraConfig, get_peft_model
    from peft.utils import get_peft_model_state_dict

    class Attention(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.q_proj = torch.nn.Linear(16, 12, bias=False)
            self.k_proj = torch.nn.Linear(16, 6, bias=False)

    model = get_peft_model(Attention(), LoraConfig(r=4, target_modules=["q_proj", "k_proj"], use_dora=True))
    shapes = {key: tuple(value.shape) for key, value in get_peft_model_state_dict(model).items()}
    magnitudes = sorted(key for key in shapes if key.endswith(".lora_magnitude_vector"))
    assert magnitudes == ["base_model.model.k_proj.lora_magnitude_vector",
                          "base_model.model.q_proj.lora_magnitude_vector"]

    rng = np.random.default_rng(5)
    states = [{key: rng.normal(size=shape).astype(np.float32) for key, shape in shapes.items()}
              for _ in range(2)]
    merged = flexlora.flexlora_aggregate(states, [3, 1], rank=4, device="cpu")

    assert list(merged) == list(shapes)
    assert {key: value.shape for key, value in merged.items()} == shapes
    assert all(value.dtype == np.float32 for value in merged.values())
    for key in magnitudes:
        np.testing.assert_allclose(merged[key], 0.75 * states[0][key] + 0.25 * states[1][key], rtol=1e-6)
    b_key, a_key = "base_model.model.k_proj.lora_B.weight", "base_model.model.k_proj.lora_A.weight"
    factors = [(state[b_key].astype(np.float64), state[a_key]) for state in states]
    best, *_ = dense_best_rank_r(factors, [3, 1], 4)
    assert relative_error(merged[b_key] @ merged[a_key], best) < 1e-6


def test_rank_comes_from_the_argument_and_missing_directions_are_zero(flexlora):
    rng = np.random.default_rng(6)
    factors = client_factors(rng, 2, 24, 16, 2)  # clients of rank 2: the mean has rank 4
    merged = flexlora.flexlora_aggregate(states_of(factors), [1, 1], rank=8, device="cpu")
    assert merged[B_KEY].shape == (24, 8) and merged[A_KEY].shape == (8, 16)
    assert not merged[B_KEY][:, 4:].any() and not merged[A_KEY][4:].any()
    exact = 0.5 * (factors[0][0] @ factors[0][1] + factors[1][0] @ factors[1][1])
    assert relative_error(merged[B_KEY] @ merged[A_KEY], exact) < 1e-6


def test_clients_of_other_ranks_are_aggregated_at_the_given_rank(flexlora):
    rng = np.random.default_rng(9)
    factors = [*client_factors(rng, 1, 24, 16, 2), *client_factors(rng, 1, 24, 16, 6)]
    merged = flexlora.flexlora_aggregate(states_of(factors), [2, 1], rank=4, device="cpu")
    assert merged[B_KEY].shape == (24, 4) and merged[A_KEY].shape == (4, 16)
    best, *_ = dense_best_rank_r(factors, [2, 1], 4)
    assert relative_error(merged[B_KEY] @ merged[A_KEY], best) < 1e-6


def test_layer_narrower_than_the_rank_keeps_the_peft_shapes(flexlora):
    rng = np.random.default_rng(7)
    factors = client_factors(rng, 3, 3, 16, 4)  # out_features 3 < rank 4
    merged = flexlora.flexlora_aggregate(states_of(factors), [1, 2, 3], rank=4, device="cpu")
    assert merged[B_KEY].shape == (3, 4) and merged[A_KEY].shape == (4, 16)
    assert not merged[B_KEY][:, 3:].any() and not merged[A_KEY][3:].any()
    exact, *_ = dense_best_rank_r(factors, [1, 2, 3], 3)
    assert relative_error(merged[B_KEY] @ merged[A_KEY], exact) < 1e-6


def test_float16_inputs_give_the_float32_result_of_their_values(flexlora):
    rng = np.random.default_rng(8)
    halves = [{key: value.astype(np.float16) for key, value in state.items()}
              for state in states_of(client_factors(rng, 2, 24, 16, 4))]
    widened = [{key: value.astype(np.float32) for key, value in state.items()} for state in halves]
    merged = flexlora.flexlora_aggregate(halves, [1, 2], rank=4, device="cpu")
    expected = flexlora.flexlora_aggregate(widened, [1, 2], rank=4, device="cpu")
    for key in expected:
        assert merged[key].dtype == np.float32
        np.testing.assert_array_equal(merged[key], expected[key])


@pytest.mark.parametrize(
    ("states", "weights", "rank", "message"),
    [
        ([], [], 4, "no client states"),
        ([{A_KEY: np.ones((4, 8)), B_KEY: np.ones((6, 4))}], [1, 2], 4, "2 weights for 1"),
        ([{A_KEY: np.ones((4, 8)), B_KEY: np.ones((6, 4))}], [0], 4, "positive"),
        ([{A_KEY: np.ones((4, 8)), B_KEY: np.ones((6, 4))}], [float("nan")], 4, "positive"),
        ([{A_KEY: np.ones((4, 8)), B_KEY: np.ones((6, 4))}], [1], 0, "rank must be at least 1"),
        ([{A_KEY: np.ones((4, 8)), B_KEY: np.ones((6, 4))}, {A_KEY: np.ones((4, 8))}], [1, 1], 4,
         "other keys"),
        ([{A_KEY: np.ones((4, 8))}], [1], 4, "lora_A without lora_B"),
        ([{B_KEY: np.ones((6, 4))}], [1], 4, "lora_B without lora_A"),
        ([{A_KEY: np.ones((4, 8)), B_KEY: np.ones((6, 3))}], [1], 4, "not \\(r, in\\) and \\(out, r\\)"),
        ([{A_KEY: np.ones((4, 8)), B_KEY: np.ones((6, 4))}, {A_KEY: np.ones((4, 9)), B_KEY: np.ones((6, 4))}],
         [1, 1], 4, "\\(6, 9\\) \\(out, in\\) in client state 1"),
        ([{"bias": np.ones(3)}, {"bias": np.ones(4)}], [1, 1], 4, "different shapes"),
    ],
)
def test_invalid_inputs_raise(flexlora, states, weights, rank, message):
    with pytest.raises(ValueError, match=message):
        flexlora.flexlora_aggregate(states, weights, rank=rank, device="cpu")
