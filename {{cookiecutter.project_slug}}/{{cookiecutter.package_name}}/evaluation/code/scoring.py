"""pass@k with the unbiased estimator of Chen et al. (2021), as bigcode-evaluation-harness
computes it: per problem from n programs of which c passed, then averaged over problems."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

REPORTED_K = (1, 10, 100)


def pass_at_k(n: int, c: int, k: int) -> float:
    """1 - C(n - c, k) / C(n, k): the chance that one of k of the n programs passes."""
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_at_ks(passed: Sequence[Sequence[bool]]) -> dict[str, float]:
    """pass@1, pass@10, pass@100 over problems, each where every problem has k programs."""
    fewest = min(len(programs) for programs in passed)
    return {
        f"pass@{k}": float(np.mean([pass_at_k(len(programs), sum(programs), k) for programs in passed]))
        for k in REPORTED_K
        if k <= fewest
    }
