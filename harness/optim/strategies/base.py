"""What every strategy receives and implements."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.errors import ConfigError


@dataclass
class Observations:
    """A snapshot of the study, normalized (see `harness.optim.spec`).

    X: (n, d) evaluated points in the unit cube (complete and infeasible).
    Y: (n, m) normalized objectives, maximized, 0 at the bound.
    C: (n, k) normalized explicit constraints, feasible when <= 0.
    feasible: (n,) whether each evaluated point is feasible.
    violation: (n,) total normalized violation (0 when feasible).
    hard: (m,) which objectives' bounds are constraints (y >= 0 required).
    X_failed: points whose evaluation failed.
    X_pending: points asked but not yet told.
    """

    X: np.ndarray
    Y: np.ndarray
    C: np.ndarray
    feasible: np.ndarray
    violation: np.ndarray
    hard: np.ndarray
    X_failed: np.ndarray
    X_pending: np.ndarray

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def dim(self) -> int:
        return self.X.shape[1]

    @property
    def n_objectives(self) -> int:
        return self.Y.shape[1]

    @property
    def n_constraints(self) -> int:
        return self.C.shape[1]


class Strategy:
    """Base class: propose points in the unit cube from observations.

    Subclasses set `name`, validate their options in `__init__` and implement
    `_propose`. `propose` falls back on uniform random points while fewer than
    `min_observations` points have been evaluated (for example when the whole
    initial design failed).
    """

    name = "base"
    min_observations = 2

    def __init__(self, dim: int, n_objectives: int, n_constraints: int, hard, seed: int = 0):
        self.dim = dim
        self.n_objectives = n_objectives
        self.n_constraints = n_constraints
        self.hard = np.asarray(hard, dtype=bool)
        self.seed = seed

    def propose(self, obs: Observations, n: int, rng: np.random.Generator) -> np.ndarray:
        if obs.n < self.min_observations:
            return rng.random((n, self.dim))
        X = np.asarray(self._propose(obs, n, rng), dtype=float).reshape(n, self.dim)
        return np.clip(X, 0.0, 1.0)

    def _propose(self, obs: Observations, n: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def observe(self, x: np.ndarray, y, c, feasible: bool, failed: bool) -> None:
        """Hook called on every tell (trust-region counters, evolutionary bookkeeping)."""


def reject_unknown(strategy: str, options: dict, known) -> None:
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for strategy {strategy!r}; "
            f"known: {', '.join(sorted(known)) or 'none'}"
        )
