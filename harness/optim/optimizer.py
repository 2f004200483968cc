"""The ask/tell optimizer over the unit cube.

    opt = Optimizer(dim=4, objectives=[Objective("acc", "maximize"),
                                       Objective("flash", "minimize", bound=1e6)],
                    strategy="ars", seed=0)
    X = opt.ask(2)                      # two workers, two different points
    opt.tell(X[0], objectives=[0.91, 4.2e5])
    opt.tell_failed(X[1], "training diverged")
    opt.hypervolume_history            # feasible hypervolume after each evaluation

The first `n_init` points are a Latin-hypercube design drawn from the seed,
identical for every strategy; after that the strategy proposes. Points asked
and not yet told are pending: strategies know them, so parallel workers get
different proposals. Every told point ends in an explicit state (complete,
infeasible, failed); values are never NaN.
"""

from __future__ import annotations

import importlib
import inspect
import time
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import qmc

from harness.errors import ConfigError
from harness.optim._validate import check_int
from harness.optim.hypervolume import feasible_hypervolume, pareto_mask
from harness.optim.spec import Constraint, Objective, Trial, TrialState, check_finite
from harness.optim.strategies.base import Observations, Strategy

#: strategy name -> "module:Class" (imported on first use)
STRATEGIES: dict[str, str] = {
    "ars": "harness.optim.strategies.ars:ARSMOBO",
    "parego": "harness.optim.strategies.acqf:ParEGO",
    "nehvi": "harness.optim.strategies.acqf:NEHVI",
    "turbo": "harness.optim.strategies.trust_region:TuRBO",
    "morbo": "harness.optim.strategies.trust_region:MORBO",
    "nsga2": "harness.optim.strategies.nsga2:NSGA2",
    "random": "harness.optim.strategies.random:RandomSearch",
    "sobol": "harness.optim.strategies.random:SobolSearch",
    "lhs": "harness.optim.strategies.random:LatinHypercubeSearch",
}

#: the strategies the benchmark compares by default
BENCH_STRATEGIES = ("ars", "parego", "nehvi", "turbo", "morbo", "nsga2", "random")


def make_strategy(
    name: str,
    dim: int,
    n_objectives: int,
    n_constraints: int,
    hard,
    seed: int = 0,
    /,
    **options,
) -> Strategy:
    """Instantiate a registered strategy; unknown names and options raise ConfigError."""
    if name not in STRATEGIES:
        raise ConfigError(
            f"argument `strategy` must be one of {', '.join(STRATEGIES)}, got {name!r}"
        )
    module, cls = STRATEGIES[name].split(":")
    klass = getattr(importlib.import_module(module), cls)
    fixed = {"self", "dim", "n_objectives", "n_constraints", "hard", "seed"}
    reserved = sorted(set(options) & fixed)
    if reserved:
        raise ConfigError(
            f"invalid option for strategy {name!r}: {', '.join(map(repr, reserved))} is set by the "
            "problem or the study, not by a strategy option"
        )
    try:
        return klass(dim, n_objectives, n_constraints, hard, seed, **options)
    except TypeError as err:
        allowed = [p for p in inspect.signature(klass.__init__).parameters if p not in fixed]
        raise ConfigError(
            f"invalid option for strategy {name!r}: {err}; allowed options: {', '.join(allowed) or 'none'}"
        ) from None


def latin_hypercube(n: int, dim: int, seed: int) -> np.ndarray:
    """The shared initial design: `n` Latin-hypercube points in [0, 1]^dim."""
    if n == 0:
        return np.zeros((0, dim))
    return qmc.LatinHypercube(dim, seed=np.random.default_rng([seed, 1009])).random(n)


class Optimizer:
    """Ask/tell front end shared by all strategies.

    Args:
        dim: dimension of the unit cube.
        objectives: `Objective` specs (direction, bound, ideal, hard).
        constraints: `Constraint` specs (upper bounds) for values told as `constraints`.
        strategy: a registered name (``ars``, ``parego``, ``nehvi``, ``turbo``,
            ``morbo``, ``nsga2``, ``random``, ``sobol``, ``lhs``) or a `Strategy`.
        seed: seeds the initial design and every proposal.
        n_init: size of the Latin-hypercube initial design (default 10).
        options: keyword options of the strategy.
    """

    def __init__(
        self,
        dim: int,
        objectives: Sequence[Objective],
        constraints: Sequence[Constraint] = (),
        strategy: str | Strategy = "ars",
        seed: int = 0,
        n_init: int = 10,
        options: Mapping | None = None,
    ):
        self.dim = check_int("dim", dim, 1)
        self.seed = check_int("seed", seed, 0)
        self.n_init = check_int("n_init", n_init, 0)
        self.objectives = list(objectives)
        self.constraints = list(constraints)
        if not self.objectives:
            raise ConfigError("argument `objectives` must list at least one Objective, got []")
        for o in self.objectives:
            if not isinstance(o, Objective):
                raise ConfigError(f"argument `objectives` must hold Objective specs, got {o!r}")
        for c in self.constraints:
            if not isinstance(c, Constraint):
                raise ConfigError(f"argument `constraints` must hold Constraint specs, got {c!r}")
        self.hard = np.array([o.hard for o in self.objectives], dtype=bool)
        if isinstance(strategy, Strategy):
            self.strategy = strategy
        else:
            self.strategy = make_strategy(
                strategy,
                self.dim,
                len(self.objectives),
                len(self.constraints),
                self.hard,
                self.seed,
                **dict(options or {}),
            )
        self._design = latin_hypercube(self.n_init, self.dim, self.seed)
        self.trials: list[Trial] = []
        self._pending: list[tuple[np.ndarray, float, str]] = []  # (x, proposal seconds, source)
        self.n_asked = 0
        self.hypervolume_history: list[float] = []
        self.last_proposal_seconds = 0.0

    # -- properties ---------------------------------------------------------
    @property
    def strategy_name(self) -> str:
        return self.strategy.name

    @property
    def pending(self) -> np.ndarray:
        if not self._pending:
            return np.zeros((0, self.dim))
        return np.array([p[0] for p in self._pending])

    @property
    def hypervolume(self) -> float:
        return self.hypervolume_history[-1] if self.hypervolume_history else 0.0

    def observations(self, pending: np.ndarray | None = None) -> Observations:
        """The normalized snapshot strategies work on."""
        done = [t for t in self.trials if t.evaluated]
        m, k = len(self.objectives), len(self.constraints)
        n = len(done)
        X = np.array([t.x for t in done], dtype=float).reshape(n, self.dim)
        Y = np.array([t.y for t in done], dtype=float).reshape(n, m)
        C = np.array([t.c for t in done], dtype=float).reshape(n, k)
        failed = np.array([t.x for t in self.trials if t.state == TrialState.FAILED])
        return Observations(
            X=X,
            Y=Y,
            C=C,
            feasible=np.array([t.feasible for t in done], dtype=bool),
            violation=np.array([t.violation for t in done], dtype=float),
            hard=self.hard,
            X_failed=failed.reshape(-1, self.dim),
            X_pending=self.pending if pending is None else np.asarray(pending).reshape(-1, self.dim),
        )

    # -- ask ----------------------------------------------------------------
    def ask(self, n: int = 1) -> np.ndarray:
        """Return `n` points (n x dim) in the unit cube and mark them pending."""
        n = check_int("n", n, 1)
        t0 = time.perf_counter()
        out, sources = [], []
        while len(out) < n and self.n_asked + len(out) < self.n_init:
            out.append(self._design[self.n_asked + len(out)])
            sources.append("initial")
        rest = n - len(out)
        if rest:
            pending = np.vstack([self.pending] + [np.atleast_2d(x) for x in out]) if (
                self._pending or out
            ) else np.zeros((0, self.dim))
            obs = self.observations(pending)
            rng = np.random.default_rng([self.seed, self.n_asked + len(out), len(self.trials)])
            X = self.strategy.propose(obs, rest, rng)
            out.extend(np.asarray(X, dtype=float).reshape(rest, self.dim))
            sources.extend([self.strategy.name] * rest)
        elapsed = time.perf_counter() - t0
        self.last_proposal_seconds = elapsed
        for x, src in zip(out, sources):
            self._pending.append((np.asarray(x, dtype=float), elapsed / n, src))
        self.n_asked += n
        return np.array(out)

    # -- tell ---------------------------------------------------------------
    def _check_x(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=float).reshape(-1)
        if x.shape[0] != self.dim:
            raise ConfigError(f"argument `x` must have {self.dim} entries, got {x.shape[0]}")
        check_finite("x", x)
        if (x < -1e-9).any() or (x > 1 + 1e-9).any():
            raise ConfigError(f"argument `x` must lie in [0, 1]^{self.dim}, got {x.tolist()!r}")
        return np.clip(x, 0.0, 1.0)

    def _pop_pending(self, x: np.ndarray) -> tuple[float, str]:
        for i, (p, secs, src) in enumerate(self._pending):
            if np.allclose(p, x, atol=1e-9, rtol=0):
                del self._pending[i]
                return secs, src
        return 0.0, "external"

    def _values(self, name: str, values, specs) -> np.ndarray:
        if isinstance(values, Mapping):
            missing = [s.name for s in specs if s.name not in values]
            extra = [k for k in values if k not in {s.name for s in specs}]
            if missing or extra:
                raise ConfigError(
                    f"argument `{name}` must have the keys {[s.name for s in specs]}, "
                    f"got {sorted(values)}"
                )
            arr = np.array([float(values[s.name]) for s in specs])
        else:
            arr = np.asarray([] if values is None else values, dtype=float).reshape(-1)
        if arr.shape[0] != len(specs):
            raise ConfigError(
                f"argument `{name}` must have {len(specs)} values, got {arr.shape[0]}"
            )
        check_finite(name, arr)
        return arr

    def tell(self, x, objectives, constraints=None) -> Trial:
        """Record an evaluation: raw objective values and raw constraint values."""
        x = self._check_x(x)
        raw_y = self._values("objectives", objectives, self.objectives)
        raw_c = self._values("constraints", constraints, self.constraints)
        y = np.array([o.normalize(v) for o, v in zip(self.objectives, raw_y)], dtype=float)
        c = np.array([s.normalize(v) for s, v in zip(self.constraints, raw_c)], dtype=float)
        viol = float(np.clip(-y[self.hard], 0, None).sum() + np.clip(c, 0, None).sum())
        state = TrialState.COMPLETE if viol <= 0 else TrialState.INFEASIBLE
        secs, src = self._pop_pending(x)
        trial = Trial(
            number=len(self.trials),
            x=x,
            state=state,
            objectives=raw_y,
            constraints=raw_c,
            y=y,
            c=c,
            violation=viol,
            proposal_seconds=secs,
            source=src,
        )
        return self._record(trial)

    def tell_failed(self, x, reason: str = "") -> Trial:
        """Record a failed evaluation (no values); it stays out of the models."""
        x = self._check_x(x)
        secs, src = self._pop_pending(x)
        trial = Trial(
            number=len(self.trials),
            x=x,
            state=TrialState.FAILED,
            reason=str(reason) or "failed",
            proposal_seconds=secs,
            source=src,
        )
        return self._record(trial)

    def set_pending(self, X: np.ndarray) -> None:
        """Replace the pending points (n x dim), e.g. with the RUNNING trials of a shared study."""
        X = np.asarray(X, dtype=float).reshape(-1, self.dim)
        self._pending = [(x, 0.0, "pending") for x in X]

    def forget_pending(self, x=None) -> None:
        """Drop one pending point (or all when x is None), e.g. for an abandoned worker."""
        if x is None:
            self._pending.clear()
        else:
            self._pop_pending(self._check_x(x))

    def _record(self, trial: Trial) -> Trial:
        self.trials.append(trial)
        if trial.evaluated:
            self.strategy.observe(trial.x, trial.y, trial.c, trial.feasible, False)
        else:
            self.strategy.observe(trial.x, None, None, False, True)
        self.hypervolume_history.append(self._feasible_hv())
        return trial

    def _feasible_hv(self) -> float:
        feas = [t.y for t in self.trials if t.feasible]
        if not feas:
            return 0.0
        return feasible_hypervolume(np.array(feas), np.ones(len(feas), dtype=bool))

    # -- results ------------------------------------------------------------
    def pareto_trials(self) -> list[Trial]:
        """Feasible trials on the Pareto front (normalized objectives)."""
        feas = [t for t in self.trials if t.feasible]
        if not feas:
            return []
        mask = pareto_mask(np.array([t.y for t in feas]))
        return [t for t, keep in zip(feas, mask) if keep]
