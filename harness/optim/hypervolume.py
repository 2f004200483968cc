"""Feasible hypervolume with BoTorch's box decompositions.

All objectives are normalized and maximized (see `harness.optim.spec`), and
the reference point is the origin, so a feasible point on the ideal corner
gives hypervolume 1.
"""

from __future__ import annotations

import numpy as np
import torch
from botorch.utils.multi_objective.box_decompositions.dominated import DominatedPartitioning
from botorch.utils.multi_objective.pareto import is_non_dominated


def _as_tensor(y) -> torch.Tensor:
    return torch.as_tensor(np.asarray(y, dtype=float), dtype=torch.double)


def pareto_mask(y: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of `y` (maximization; duplicates kept once)."""
    y = np.atleast_2d(np.asarray(y, dtype=float))
    if y.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    return is_non_dominated(_as_tensor(y), deduplicate=True).numpy()


def hypervolume(y: np.ndarray, ref_point: np.ndarray | None = None) -> float:
    """Hypervolume dominated by the rows of `y` above `ref_point` (default: the origin).

    Uses `DominatedPartitioning`; with one objective it is the best value above
    the reference.
    """
    y = np.atleast_2d(np.asarray(y, dtype=float))
    m = y.shape[-1]
    ref = np.zeros(m) if ref_point is None else np.asarray(ref_point, dtype=float)
    if y.shape[0] == 0:
        return 0.0
    if m == 1:
        return float(max(0.0, float(np.max(y[:, 0] - ref[0]))))
    y = y[(y > ref).all(-1)]
    if y.shape[0] == 0:
        return 0.0
    part = DominatedPartitioning(ref_point=_as_tensor(ref), Y=_as_tensor(y))
    return float(part.compute_hypervolume())


def feasible_hypervolume(y: np.ndarray, feasible: np.ndarray) -> float:
    """Hypervolume of the feasible rows of `y`, reference point at the origin."""
    y = np.atleast_2d(np.asarray(y, dtype=float))
    feasible = np.asarray(feasible, dtype=bool)
    return hypervolume(y[feasible]) if feasible.any() else 0.0


def contributions(y: np.ndarray) -> np.ndarray:
    """Exclusive hypervolume contribution of each row (0 for dominated rows)."""
    y = np.atleast_2d(np.asarray(y, dtype=float))
    total = hypervolume(y)
    out = np.zeros(y.shape[0])
    front = np.flatnonzero(pareto_mask(y))
    for i in front:
        rest = np.delete(y, i, axis=0)
        out[i] = total - hypervolume(rest)
    return np.clip(out, 0.0, None)


def hypervolume_improvement(y_new: np.ndarray, y_front: np.ndarray) -> np.ndarray:
    """Hypervolume gained by adding each row of `y_new` alone to `y_front`."""
    y_new = np.atleast_2d(np.asarray(y_new, dtype=float))
    base = hypervolume(y_front) if np.size(y_front) else 0.0
    out = np.empty(y_new.shape[0])
    for i, row in enumerate(y_new):
        stacked = np.vstack([y_front, row[None]]) if np.size(y_front) else row[None]
        out[i] = hypervolume(stacked) - base
    return np.clip(out, 0.0, None)
