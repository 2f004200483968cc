"""Trust-region baselines: TuRBO on random Chebyshev scalarizations, and MORBO.

Neither exists as library code (BoTorch has them as tutorials and research
code), so both are written here from their publications:

* TuRBO (Eriksson et al., 2019): one box around the incumbent, side lengths
  scaled by the GP lengthscales, doubled after `success_tolerance`
  consecutive improvements, halved after `failure_tolerance` consecutive
  failures, reset when it falls below `length_min`. Candidates perturb a
  random subset of the incumbent's coordinates inside the box, and Thompson
  sampling picks the best. Each proposal scalarizes the objectives with a
  fresh simplex weight vector (augmented Chebyshev, rho = 0.005), so the
  incumbent moves along the front.
* MORBO (Daulton et al., 2022): several such trust regions, centred on
  distinct feasible Pareto points in decreasing order of hypervolume
  contribution. Thompson samples of every region's candidates are scored by
  the hypervolume improvement they would add to the current feasible front;
  a region succeeds when its point increases the hypervolume.

Constraints: a Thompson sample counts only when it satisfies every
constraint; when no candidate does, the one with the smallest sampled
violation is taken.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from botorch.utils.multi_objective.box_decompositions.non_dominated import (
    FastNondominatedPartitioning,
)
from scipy.stats import qmc

from harness.optim._validate import MAX_THREADS, check_float, check_int
from harness.optim.gp import PosteriorCache, fit_outputs, single_threaded
from harness.optim.hypervolume import contributions, hypervolume, pareto_mask
from harness.optim.scalarization import chebyshev, sample_simplex, violation
from harness.optim.strategies.base import Strategy


class _Region:
    """Side length and success/failure counters of one trust region."""

    def __init__(self, length: float):
        self.length = length
        self.successes = 0
        self.failures = 0
        self.center: np.ndarray | None = None

    def update(self, success: bool, strategy) -> None:
        if success:
            self.successes += 1
            self.failures = 0
        else:
            self.failures += 1
            self.successes = 0
        if self.successes >= strategy.success_tolerance:
            self.length = min(2.0 * self.length, strategy.length_max)
            self.successes = 0
        elif self.failures >= strategy.failure_tolerance:
            self.length /= 2.0
            self.failures = 0
        if self.length < strategy.length_min:  # restart
            self.length = strategy.length_init
            self.successes = self.failures = 0


class _TrustRegionBase(Strategy):
    def __init__(
        self,
        dim,
        n_objectives,
        n_constraints,
        hard,
        seed=0,
        *,
        n_candidates: int | None = None,
        length_init: float = 0.8,
        length_min: float = 0.5**7,
        length_max: float = 1.6,
        success_tolerance: int = 3,
        failure_tolerance: int | None = None,
        rho: float = 0.005,
        threads: int = 1,
    ):
        super().__init__(dim, n_objectives, n_constraints, hard, seed)
        self.n_candidates = check_int(
            "n_candidates", n_candidates if n_candidates is not None else min(2000, 100 * dim), 1
        )
        self.length_init = check_float("length_init", length_init, 0.0, low_open=True)
        # A floor at or above the initial length would restart the region at its first shrink.
        self.length_min = check_float(
            "length_min", length_min, 0.0, self.length_init, low_open=True, high_open=True
        )
        self.length_max = check_float("length_max", length_max, self.length_init)
        self.success_tolerance = check_int("success_tolerance", success_tolerance, 1)
        self.failure_tolerance = check_int(
            "failure_tolerance",
            failure_tolerance if failure_tolerance is not None else self.default_failure_tolerance(),
            1,
        )
        self.rho = check_float("rho", rho, 0.0)
        self.threads = check_int("threads", threads, 1, MAX_THREADS)
        self._previous_model = None
        self._origin: dict[bytes, tuple] = {}  # proposal -> (region index, reference values)

    def default_failure_tolerance(self) -> int:
        return max(4, self.dim)

    def _model(self, obs, X_pending):
        outputs = np.hstack([obs.Y, obs.C]) if obs.n_constraints else obs.Y
        model = fit_outputs(obs.X, outputs, previous=self._previous_model)
        self._previous_model = model
        return PosteriorCache(model, X_pending)

    def _box(self, center: np.ndarray, length: float, cache: PosteriorCache):
        ls = cache.lengthscales()
        if ls is None:
            weights = np.ones(self.dim)
        else:
            weights = ls / ls.mean()
            weights = weights / np.prod(weights) ** (1.0 / self.dim)
        lo = np.clip(center - weights * length / 2.0, 0.0, 1.0)
        hi = np.clip(center + weights * length / 2.0, 0.0, 1.0)
        return lo, hi

    def _candidates(self, center, lo, hi, count, rng) -> np.ndarray:
        """Perturb a random subset of the centre's coordinates inside [lo, hi]."""
        sobol = qmc.Sobol(self.dim, scramble=True, seed=rng.integers(2**31 - 1))
        with warnings.catch_warnings():  # any count is fine for a candidate set
            warnings.simplefilter("ignore")
            pert = lo + (hi - lo) * sobol.random(count)
        prob = min(1.0, 20.0 / self.dim)
        mask = rng.random((count, self.dim)) <= prob
        empty = ~mask.any(axis=1)
        mask[empty, rng.integers(0, self.dim, size=int(empty.sum()))] = True
        cand = np.where(mask, pert, center)
        return cand

    def _sample(self, cache: PosteriorCache, cand: np.ndarray, gen: torch.Generator):
        """One joint posterior sample at the candidates: (Y (c x m), violation (c,))."""
        Z = cache.joint_samples(torch.as_tensor(cand), 1, gen)[0].numpy()  # c x (m + k)
        Y, C = Z[:, : self.n_objectives], Z[:, self.n_objectives :]
        return Y, violation(Y, C, self.hard)

    def observe(self, x, y, c, feasible, failed):
        key = np.round(np.asarray(x, dtype=float), 9).tobytes()
        origin = self._origin.pop(key, None)
        if origin is None:
            return
        self._judge(origin, y, feasible and not failed)

    def _remember(self, x: np.ndarray, origin: tuple) -> None:
        self._origin[np.round(np.asarray(x, dtype=float), 9).tobytes()] = origin


class TuRBO(_TrustRegionBase):
    """TuRBO-1 on a random augmented Chebyshev scalarization per proposal (``turbo``).

    Options: n_candidates (min(2000, 100 d)), length_init (0.8), length_min
    (0.5^7), length_max (1.6), success_tolerance (3), failure_tolerance
    (max(4, d)), rho (0.005), threads (1).
    """

    name = "turbo"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.region = _Region(self.length_init)

    def _propose(self, obs, n, rng):
        out = []
        with single_threaded(self.threads):
            for _ in range(n):
                pend = np.vstack([obs.X_pending.reshape(-1, self.dim)] + [p[None] for p in out])
                cache = self._model(obs, pend)
                out.append(self._one(obs, cache, rng))
        return np.array(out)

    def _one(self, obs, cache, rng):
        gen = torch.Generator().manual_seed(int(rng.integers(2**31 - 1)))
        weights = sample_simplex(self.n_objectives, rng)
        f = chebyshev(obs.Y, weights, self.rho)
        if obs.feasible.any():
            best = int(np.flatnonzero(obs.feasible)[np.argmax(f[obs.feasible])])
            f_best = float(f[best])
        else:
            best = int(np.argmin(obs.violation))
            f_best = -math.inf
        center = obs.X[best]
        lo, hi = self._box(center, self.region.length, cache)
        cand = self._candidates(center, lo, hi, self.n_candidates, rng)
        Ys, viol = self._sample(cache, cand, gen)
        fs = chebyshev(Ys, weights, self.rho)
        ok = viol <= 0
        pick = int(np.argmax(np.where(ok, fs, -np.inf))) if ok.any() else int(np.argmin(viol))
        x = cand[pick]
        self._remember(x, (weights, f_best))
        return x

    def _judge(self, origin, y, feasible):
        weights, f_best = origin
        success = False
        if feasible and y is not None:
            f_new = float(chebyshev(np.asarray(y)[None], weights, self.rho)[0])
            success = f_new > f_best + 1e-3 * abs(f_best) if math.isfinite(f_best) else True
        self.region.update(success, self)


class MORBO(_TrustRegionBase):
    """Several trust regions centred on high-contribution Pareto points (``morbo``).

    Options: n_regions (5) and those of ``turbo``; the default failure
    tolerance is max(2, ceil(d / n_regions)) because each region receives
    only about 1 / n_regions of the evaluations.
    """

    name = "morbo"

    def __init__(self, *args, n_regions: int = 5, **kwargs):
        self.n_regions = check_int("n_regions", n_regions, 1)
        super().__init__(*args, **kwargs)
        self.regions = [_Region(self.length_init) for _ in range(self.n_regions)]
        self._hv_now = 0.0
        self._front = np.zeros((0, self.n_objectives))

    def default_failure_tolerance(self) -> int:
        return max(2, math.ceil(self.dim / self.n_regions))

    def _centers(self, obs) -> list[int]:
        """Distinct observation indices, best hypervolume contribution first."""
        order: list[int] = []
        if obs.feasible.any():
            feas = np.flatnonzero(obs.feasible)
            Yf = obs.Y[feas]
            contrib = contributions(Yf) if Yf.shape[1] > 1 else np.maximum(Yf[:, 0], 0)
            front = pareto_mask(Yf)
            ranked = sorted(range(len(feas)), key=lambda i: (not front[i], -contrib[i]))
            order = [int(feas[i]) for i in ranked]
        infeas = np.flatnonzero(~obs.feasible)
        order += [int(i) for i in infeas[np.argsort(obs.violation[infeas], kind="stable")]]
        return order[: self.n_regions]

    def _hvi(self, Ys: np.ndarray, front: np.ndarray) -> np.ndarray:
        """Hypervolume improvement of each row of Ys over `front` (ref at the origin)."""
        m = Ys.shape[1]
        if m == 1:
            best = front.max() if front.size else 0.0
            return np.clip(Ys[:, 0] - max(best, 0.0), 0, None)
        ref = torch.zeros(m, dtype=torch.double)
        front_t = torch.as_tensor(front.reshape(-1, m), dtype=torch.double)
        front_t = front_t[(front_t > 0).all(-1)]
        part = FastNondominatedPartitioning(ref_point=ref, Y=front_t)
        cells = part.get_hypercell_bounds()  # 2 x cells x m
        lo, hi = cells[0], cells[1]
        Y = torch.as_tensor(Ys, dtype=torch.double).unsqueeze(-2)  # c x 1 x m
        edge = (torch.minimum(Y, hi) - lo).clamp(min=0)
        return edge.prod(-1).sum(-1).numpy()

    def _propose(self, obs, n, rng):
        out = []
        with single_threaded(self.threads):
            for _ in range(n):
                pend = np.vstack([obs.X_pending.reshape(-1, self.dim)] + [p[None] for p in out])
                cache = self._model(obs, pend)
                out.append(self._one(obs, cache, rng))
        return np.array(out)

    def _one(self, obs, cache, rng):
        gen = torch.Generator().manual_seed(int(rng.integers(2**31 - 1)))
        centers = self._centers(obs)
        front = obs.Y[obs.feasible]
        if front.size:
            front = front[pareto_mask(front)]
        per_region = max(1, self.n_candidates // max(1, len(centers)))
        best = (-np.inf, None, None)
        fallback = (np.inf, None, None)
        for r, idx in enumerate(centers):
            region = self.regions[r]
            region.center = obs.X[idx]
            lo, hi = self._box(obs.X[idx], region.length, cache)
            cand = self._candidates(obs.X[idx], lo, hi, per_region, rng)
            Ys, viol = self._sample(cache, cand, gen)
            ok = viol <= 0
            if ok.any():
                hvi = np.where(ok, self._hvi(Ys, front), -1.0)
                # ties at zero improvement: prefer the largest Chebyshev value of a random weight
                tie = 1e-9 * chebyshev(Ys, sample_simplex(self.n_objectives, rng), self.rho)
                score = np.where(ok, hvi + tie, -np.inf)
                i = int(np.argmax(score))
                if score[i] > best[0]:
                    best = (score[i], cand[i], r)
            i = int(np.argmin(viol))
            if viol[i] < fallback[0]:
                fallback = (viol[i], cand[i], r)
        _, x, r = best if best[1] is not None else fallback
        self._remember(x, (r,))
        return x

    def observe(self, x, y, c, feasible, failed):
        if feasible and not failed:
            front_before = self._hv_now
            self._front = np.vstack([self._front, np.asarray(y)[None]])
            self._front = self._front[pareto_mask(self._front)]
            self._hv_now = hypervolume(self._front)
            gained = self._hv_now > front_before + 1e-12
        else:
            gained = False
        key = np.round(np.asarray(x, dtype=float), 9).tobytes()
        origin = self._origin.pop(key, None)
        if origin is not None:
            self.regions[origin[0]].update(gained, self)
