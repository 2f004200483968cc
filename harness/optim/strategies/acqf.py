"""Baselines built on BoTorch acquisition functions: ParEGO and qLogNEHVI.

Both model every objective and every explicit constraint with the same GPs
as ARS-MOBO (`harness.optim.gp.fit_outputs`), pass pending points as
`X_pending`, and maximize the acquisition with `optimize_acqf` (multi-start
L-BFGS from the best of `raw_samples` random points). With one objective both
fall back on qLogNEI, since ParEGO's scalarization and the hypervolume
improvement need two objectives or more.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from botorch.acquisition.logei import qLogNoisyExpectedImprovement
from botorch.acquisition.multi_objective.logei import (
    qLogNoisyExpectedHypervolumeImprovement,
)
from botorch.acquisition.multi_objective.objective import IdentityMCMultiOutputObjective
from botorch.acquisition.multi_objective.parego import qLogNParEGO
from botorch.acquisition.objective import GenericMCObjective
from botorch.optim import optimize_acqf

from harness.optim._validate import MAX_THREADS, check_int
from harness.optim.gp import fit_outputs, single_threaded
from harness.optim.scalarization import sample_simplex
from harness.optim.strategies.base import Strategy


class _AcqfStrategy(Strategy):
    """Shared model fitting, constraints and acquisition optimization."""

    def __init__(
        self,
        dim,
        n_objectives,
        n_constraints,
        hard,
        seed=0,
        *,
        num_restarts: int = 10,
        raw_samples: int = 512,
        maxiter: int = 200,
        threads: int = 1,
    ):
        super().__init__(dim, n_objectives, n_constraints, hard, seed)
        self.num_restarts = check_int("num_restarts", num_restarts, 1)
        self.raw_samples = check_int("raw_samples", raw_samples, 1)
        self.maxiter = check_int("maxiter", maxiter, 1)
        self.threads = check_int("threads", threads, 1, MAX_THREADS)
        self._previous_model = None

    def constraint_callables(self):
        """Outcome constraints on model samples (feasible when <= 0)."""
        m = self.n_objectives
        out = [lambda Z, i=i: Z[..., m + i] for i in range(self.n_constraints)]
        out += [lambda Z, j=j: -Z[..., j] for j in np.flatnonzero(self.hard)]
        return out

    def _propose(self, obs, n, rng):
        torch.manual_seed(int(rng.integers(2**31 - 1)))
        with single_threaded(self.threads):
            outputs = np.hstack([obs.Y, obs.C]) if obs.n_constraints else obs.Y
            model = fit_outputs(obs.X, outputs, previous=self._previous_model)
            self._previous_model = model
            X = torch.as_tensor(obs.X, dtype=torch.double)
            pending = (
                torch.as_tensor(obs.X_pending, dtype=torch.double) if len(obs.X_pending) else None
            )
            bounds = torch.stack([torch.zeros(self.dim), torch.ones(self.dim)]).double()
            with warnings.catch_warnings():
                # BoTorch warns when no training point is feasible yet; the
                # constrained acquisition still works then
                warnings.simplefilter("ignore")
                acqf = self.acquisition(model, X, pending, rng)
                cand, _ = optimize_acqf(
                    acqf,
                    bounds=bounds,
                    q=n,
                    num_restarts=self.num_restarts,
                    raw_samples=self.raw_samples,
                    sequential=n > 1,
                    options={"batch_limit": 5, "maxiter": self.maxiter},
                )
        return cand.detach().numpy()

    def single_objective(self, model, X, pending):
        constraints = self.constraint_callables()
        return qLogNoisyExpectedImprovement(
            model,
            X_baseline=X,
            objective=GenericMCObjective(lambda Z, X=None: Z[..., 0]),
            constraints=constraints or None,
            X_pending=pending,
            prune_baseline=True,
        )

    def acquisition(self, model, X, pending, rng):
        raise NotImplementedError


class ParEGO(_AcqfStrategy):
    """qLogNParEGO with a fresh simplex weight vector per proposal (strategy ``parego``).

    Options: num_restarts (10), raw_samples (512), maxiter (200), threads (1).
    """

    name = "parego"

    def acquisition(self, model, X, pending, rng):
        if self.n_objectives == 1:
            return self.single_objective(model, X, pending)
        weights = torch.as_tensor(sample_simplex(self.n_objectives, rng), dtype=torch.double)
        constraints = self.constraint_callables()
        return qLogNParEGO(
            model,
            X_baseline=X,
            scalarization_weights=weights,
            objective=IdentityMCMultiOutputObjective(outcomes=list(range(self.n_objectives))),
            constraints=constraints or None,
            X_pending=pending,
            prune_baseline=True,
        )


class NEHVI(_AcqfStrategy):
    """qLogNEHVI with the reference point at the origin (strategy ``nehvi``).

    Options: num_restarts (10), raw_samples (512), maxiter (200), threads (1).
    """

    name = "nehvi"

    def acquisition(self, model, X, pending, rng):
        if self.n_objectives == 1:
            return self.single_objective(model, X, pending)
        constraints = self.constraint_callables()
        return qLogNoisyExpectedHypervolumeImprovement(
            model,
            ref_point=torch.zeros(self.n_objectives, dtype=torch.double),
            X_baseline=X,
            objective=IdentityMCMultiOutputObjective(outcomes=list(range(self.n_objectives))),
            constraints=constraints or None,
            X_pending=pending,
            prune_baseline=True,
        )
