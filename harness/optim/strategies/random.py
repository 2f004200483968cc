"""Model-free baselines: uniform random search, scrambled Sobol and Latin hypercube."""

from __future__ import annotations

import numpy as np
from scipy.stats import qmc

from harness.optim._validate import check_int
from harness.optim.strategies.base import Strategy


class RandomSearch(Strategy):
    """Independent uniform samples of the unit cube (pending points are irrelevant)."""

    name = "random"
    min_observations = 0

    def _propose(self, obs, n, rng):
        return rng.random((n, self.dim))


class SobolSearch(Strategy):
    """Points of one scrambled Sobol sequence, handed out in order."""

    name = "sobol"
    min_observations = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._engine = qmc.Sobol(self.dim, scramble=True, seed=self.seed)

    def _propose(self, obs, n, rng):
        return self._engine.random(n)


class LatinHypercubeSearch(Strategy):
    """Points of one Latin-hypercube design of `design_size` points, handed out in order."""

    name = "lhs"
    min_observations = 0

    def __init__(self, *args, design_size: int = 256, **kwargs):
        super().__init__(*args, **kwargs)
        self.design_size = check_int("design_size", design_size, 1)
        self._design = qmc.LatinHypercube(self.dim, seed=self.seed + 7919).random(self.design_size)
        self._next = 0

    def _propose(self, obs, n, rng):
        out = []
        for _ in range(n):
            if self._next >= self.design_size:
                out.append(rng.random(self.dim))
            else:
                out.append(self._design[self._next])
                self._next += 1
        return np.array(out)
