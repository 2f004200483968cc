"""Weights, augmented Chebyshev scalarization and the penalized reward of ARS-MOBO.

All inputs are normalized objectives (maximized, 0 at the bound) and
normalized constraints (feasible when <= 0); see `harness.optim.spec`.
"""

from __future__ import annotations

import numpy as np
import torch

DEFAULT_RHO = 0.005
DEFAULT_NEGATIVE_SCALE = 1e-3


def sample_simplex(m: int, rng: np.random.Generator) -> np.ndarray:
    """A weight vector drawn uniformly from the (m-1)-simplex."""
    if m == 1:
        return np.ones(1)
    e = rng.exponential(size=m)
    return e / e.sum()


def chebyshev(y, weights, rho: float = DEFAULT_RHO):
    """Augmented Chebyshev scalarization of maximized objectives (last axis).

        f(y) = min_j w_j y_j + rho * sum_j w_j y_j

    This is the maximization form of Knowles' augmented Chebyshev function
    (which minimizes max_j w_j f_j + rho sum_j w_j f_j): on a front the
    maximizer balances w_j y_j, and the small linear term breaks ties in
    favour of non-dominated points. Works on numpy arrays and torch tensors.
    """
    if isinstance(y, torch.Tensor):
        w = torch.as_tensor(np.asarray(weights), dtype=y.dtype)
        prod = y * w
        return prod.min(dim=-1).values + rho * prod.sum(dim=-1)
    prod = np.asarray(y, dtype=float) * np.asarray(weights, dtype=float)
    return prod.min(axis=-1) + rho * prod.sum(axis=-1)


def violation(y, c, hard):
    """Total violation: sum of positive constraint values plus hard-bound shortfalls (y < 0)."""
    hard_idx = np.flatnonzero(np.asarray(hard, dtype=bool))
    if isinstance(y, torch.Tensor):
        v = torch.zeros(y.shape[:-1], dtype=y.dtype)
        if len(hard_idx):
            v = v + (-y[..., hard_idx]).clamp(min=0).sum(-1)
        if c is not None and c.shape[-1]:
            v = v + c.clamp(min=0).sum(-1)
        return v
    y = np.asarray(y, dtype=float)
    v = np.zeros(y.shape[:-1])
    if len(hard_idx):
        v = v + np.clip(-y[..., hard_idx], 0, None).sum(-1)
    if c is not None and np.shape(c)[-1]:
        v = v + np.clip(np.asarray(c, dtype=float), 0, None).sum(-1)
    return v


def penalized_reward(
    f,
    f_star: float,
    viol,
    negative_scale: float = DEFAULT_NEGATIVE_SCALE,
    penalty: float = 1.0,
):
    """Reward of one posterior sample.

    The improvement d = f - f_star counts fully when it is positive and the
    sample satisfies every constraint; otherwise it is scaled by
    `negative_scale` (and a positive improvement of a violating sample counts
    as 0). Constraint violation is subtracted, weighted by `penalty`.
    """
    if isinstance(f, torch.Tensor):
        d = f - f_star
        ok = viol <= 0
        r = torch.where((d > 0) & ok, d, negative_scale * d.clamp(max=0))
        return r - penalty * viol
    d = np.asarray(f, dtype=float) - f_star
    viol = np.asarray(viol, dtype=float)
    ok = viol <= 0
    r = np.where((d > 0) & ok, d, negative_scale * np.minimum(d, 0))
    return r - penalty * viol
