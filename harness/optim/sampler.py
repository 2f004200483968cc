"""Every strategy as an Optuna sampler.

    sampler = StrategySampler("ars", seed=0, objectives=[...])
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)

`StrategySampler` keeps one `Optimizer` per study and, before each
proposal, tells it the trials that finished since the last one, in trial
order: COMPLETE trials with their values and constraints, FAIL and PRUNED
trials as failed evaluations. RUNNING and WAITING trials are passed as
pending points, so workers sharing the study get different proposals.

Search space: the intersection of the distributions of all trials
(`IntersectionSearchSpace`), sorted by name, each parameter one coordinate
of the unit cube: float parameters linearly or on a log scale (rounded to
`step`), integers over [low - 0.5, high + 0.5] then rounded, categorical
parameters by splitting [0, 1] into one interval per choice. The first
`n_init` trials (and any parameter outside the relative search space) take
their values from a Latin-hypercube column per parameter, seeded by the
sampler seed and the parameter name, so the initial design does not depend
on trial timing.

Constraints: Optuna 5 stores them per trial with `trial.set_constraint(key,
value)` (feasible when <= 0) and exposes them as `FrozenTrial.constraints`;
a `constraints_func` given to this sampler is evaluated after each trial
and stored the way older Optuna samplers do (system attribute
``constraints``), which `FrozenTrial.constraints` also reads. Constraint
keys are sorted by name.

Objectives: without `objectives`, each objective is normalized between the
worst and best values seen so far (the reference point is the worst value);
the optimizer is rebuilt whenever those change. Passing `Objective` specs
(for example flash with its limit as a hard bound) fixes the normalization.

Determinism: with the same seed, the same trial history and one worker,
proposals are identical; the sampler ignores `reseed_rng`, since pending
points already separate parallel workers.
"""

from __future__ import annotations

import logging
import math
import time
import zlib
from collections.abc import Callable, Sequence

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import BaseSampler
from optuna.samplers._base import _process_constraints_after_trial
from optuna.search_space import IntersectionSearchSpace
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from harness.errors import ConfigError
from harness.optim._validate import check_int
from harness.optim.optimizer import STRATEGIES, Optimizer
from harness.optim.spec import MAXIMIZE, MINIMIZE, Constraint, Objective

log = logging.getLogger(__name__)

X_ATTR = "harness.optim:x"
STRATEGY_ATTR = "harness.optim:strategy"


# ---------------------------------------------------------------------------
# distributions <-> unit interval


def to_value(dist: BaseDistribution, u: float):
    """Map u in [0, 1] to a value of the distribution."""
    u = min(max(float(u), 0.0), 1.0)
    if isinstance(dist, CategoricalDistribution):
        k = len(dist.choices)
        return dist.choices[min(int(u * k), k - 1)]
    if isinstance(dist, IntDistribution):
        step = dist.step
        n = (dist.high - dist.low) // step + 1
        if dist.log:
            v = math.exp(math.log(dist.low) + u * (math.log(dist.high) - math.log(dist.low)))
            k = round((v - dist.low) / step)
        else:
            k = math.floor(u * n)
        k = min(max(int(k), 0), n - 1)
        return int(dist.low + k * step)
    if isinstance(dist, FloatDistribution):
        if dist.log:
            v = math.exp(math.log(dist.low) + u * (math.log(dist.high) - math.log(dist.low)))
        else:
            v = dist.low + u * (dist.high - dist.low)
        if dist.step is not None:
            v = dist.low + round((v - dist.low) / dist.step) * dist.step
        return float(min(max(v, dist.low), dist.high))
    raise ConfigError(f"unsupported Optuna distribution {dist!r}")


def to_unit(dist: BaseDistribution, value) -> float:
    """Map a value of the distribution to [0, 1] (inverse of `to_value` up to rounding)."""
    if isinstance(dist, CategoricalDistribution):
        k = len(dist.choices)
        return (dist.choices.index(value) + 0.5) / k
    if isinstance(dist, IntDistribution):
        n = (dist.high - dist.low) // dist.step + 1
        if dist.log:
            span = math.log(dist.high) - math.log(dist.low)
            return min(max((math.log(value) - math.log(dist.low)) / span, 0.0), 1.0)
        return ((value - dist.low) / dist.step + 0.5) / n
    if isinstance(dist, FloatDistribution):
        if dist.high == dist.low:
            return 0.5
        if dist.log:
            u = (math.log(value) - math.log(dist.low)) / (math.log(dist.high) - math.log(dist.low))
        else:
            u = (value - dist.low) / (dist.high - dist.low)
        return min(max(u, 0.0), 1.0)
    raise ConfigError(f"unsupported Optuna distribution {dist!r}")


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


# ---------------------------------------------------------------------------


class StrategySampler(BaseSampler):
    """An Optuna sampler driven by one of the harness's strategies.

    Args:
        strategy: strategy name (``ars``, ``parego``, ``nehvi``, ``turbo``,
            ``morbo``, ``nsga2``, ``random``, ``sobol``, ``lhs``).
        seed: seeds the initial design and every proposal.
        n_init: trials drawn from the Latin-hypercube initial design.
        options: keyword options of the strategy.
        objectives: `Objective` specs, one per study direction (same order);
            their directions must match the study's.
        constraints_func: optional, deprecated in Optuna 5 in favour of
            `trial.set_constraint`; returns values that are feasible when <= 0.
    """

    def __init__(
        self,
        strategy: str = "ars",
        *,
        seed: int = 0,
        n_init: int = 10,
        options: dict | None = None,
        objectives: Sequence[Objective] | None = None,
        constraints_func: Callable[[FrozenTrial], Sequence[float]] | None = None,
    ):
        if strategy not in STRATEGIES:
            raise ConfigError(
                f"argument `strategy` must be one of {', '.join(STRATEGIES)}, got {strategy!r}"
            )
        self.strategy = strategy
        self.seed = check_int("seed", seed, 0)
        self.n_init = check_int("n_init", n_init, 0)
        self.options = dict(options or {})
        self.objectives = list(objectives) if objectives is not None else None
        self.constraints_func = constraints_func
        self._search_space = IntersectionSearchSpace(include_pruned=True)
        self._optimizer: Optimizer | None = None
        self._signature = None
        self._told: set[int] = set()

    def reseed_rng(self) -> None:
        """Keep the seed: proposals depend only on the seed and the trial history."""

    # -- Optuna hooks -------------------------------------------------------
    def infer_relative_search_space(self, study, trial):
        space = {}
        for name, dist in self._search_space.calculate(study).items():
            if dist.single():
                continue
            space[name] = dist
        return dict(sorted(space.items()))

    def sample_relative(self, study, trial, search_space):
        if not search_space:
            return {}
        fixed = trial.system_attrs.get("fixed_params", {})
        if all(n in fixed for n in search_space):  # an enqueued trial: no proposal needed
            return {}
        trials = study.get_trials(deepcopy=False)
        started = [t for t in trials if t.number < trial.number]
        if len(started) < self.n_init:
            return {}
        finished = [t for t in started if t.state.is_finished()]
        if not any(t.state == TrialState.COMPLETE for t in finished):
            return {}
        names = list(search_space)
        t0 = time.perf_counter()
        opt = self._sync(study, names, search_space, finished)
        pending = [
            self._unit(t, names, search_space)
            for t in started
            if t.state in (TrialState.RUNNING, TrialState.WAITING)
            and all(n in t.params for n in names)
        ]
        opt.set_pending(np.array(pending).reshape(-1, len(names)))
        x = opt.ask(1)[0]
        opt.forget_pending()
        study._storage.set_trial_system_attr(trial._trial_id, X_ATTR, [float(v) for v in x])
        study._storage.set_trial_system_attr(
            trial._trial_id, STRATEGY_ATTR, {"name": self.strategy, "seconds": time.perf_counter() - t0}
        )
        return {n: to_value(search_space[n], u) for n, u in zip(names, x)}

    def sample_independent(self, study, trial, param_name, param_distribution):
        u = self._initial_coordinate(param_name, trial.number)
        return to_value(param_distribution, u)

    def after_trial(self, study, trial, state, values):
        if self.constraints_func is not None:
            _process_constraints_after_trial(self.constraints_func, study, trial, state)

    # -- internals ----------------------------------------------------------
    def _initial_coordinate(self, name: str, number: int) -> float:
        key = zlib.crc32(name.encode())
        if number < self.n_init:
            rng = np.random.default_rng([self.seed, key])
            strata = rng.permutation(self.n_init)
            jitter = rng.random(self.n_init)
            return float((strata[number] + jitter[number]) / self.n_init)
        return float(np.random.default_rng([self.seed, key, number]).random())

    def _unit(self, t: FrozenTrial, names, space) -> np.ndarray:
        """The trial's point: the proposal itself when its parameters were used unchanged."""
        stored = t.system_attrs.get(X_ATTR)
        if stored is not None and len(stored) == len(names):
            u = np.clip(np.asarray(stored, dtype=float), 0.0, 1.0)
            if all(_same(to_value(space[n], ui), t.params[n]) for n, ui in zip(names, u)):
                return u
        # enqueued or user-fixed parameters: encode what was evaluated
        return np.array([to_unit(space[n], t.params[n]) for n in names])

    def _objective_specs(self, study, finished) -> list[Objective]:
        directions = study.directions
        if self.objectives is not None:
            if len(self.objectives) != len(directions):
                raise ConfigError(
                    f"argument `objectives` must have one entry per study direction "
                    f"({len(directions)}), got {len(self.objectives)}"
                )
            for o, d in zip(self.objectives, directions):
                want = MAXIMIZE if d == StudyDirection.MAXIMIZE else MINIMIZE
                if o.direction != want:
                    raise ConfigError(
                        f"objective {o.name!r} has direction {o.direction!r} but the study "
                        f"direction is {want!r}"
                    )
            return self.objectives
        values = np.array([t.values for t in finished if t.state == TrialState.COMPLETE])
        specs = []
        for j, d in enumerate(directions):
            col = values[:, j]
            lo, hi = float(col.min()), float(col.max())
            if hi <= lo:
                hi = lo + max(1.0, abs(lo)) * 1e-6
            if d == StudyDirection.MAXIMIZE:
                specs.append(Objective(f"objective{j}", MAXIMIZE, bound=lo, ideal=hi, hard=False))
            else:
                specs.append(Objective(f"objective{j}", MINIMIZE, bound=hi, ideal=lo, hard=False))
        return specs

    def _sync(self, study, names, space, finished) -> Optimizer:
        objectives = self._objective_specs(study, finished)
        keys = sorted({k for t in finished if t.state == TrialState.COMPLETE for k in t.constraints})
        signature = (tuple(names), tuple(map(repr, space.values())), tuple(objectives), tuple(keys))
        if signature != self._signature:
            self._optimizer = Optimizer(
                dim=len(names),
                objectives=objectives,
                constraints=[Constraint(k, upper=0.0, scale=1.0) for k in keys],
                strategy=self.strategy,
                seed=self.seed,
                n_init=0,
                options=self.options,
            )
            self._signature = signature
            self._told = set()
        opt = self._optimizer
        for t in sorted(finished, key=lambda t: t.number):
            if t.number in self._told:
                continue
            self._told.add(t.number)
            if not all(n in t.params for n in names):
                continue
            x = self._unit(t, names, space)
            if t.state == TrialState.COMPLETE:
                cons = t.constraints
                if any(k not in cons for k in keys):
                    opt.tell_failed(x, "missing constraint values")
                    continue
                opt.tell(x, objectives=list(t.values), constraints=[cons[k] for k in keys])
            else:
                opt.tell_failed(x, t.state.name.lower())
        return opt

