"""NSGA-II baseline (pymoo) behind the ask/tell interface (strategy ``nsga2``).

The initial design is the first population. pymoo then breeds a generation
of `pop_size` offspring (binary tournament, SBX crossover, polynomial
mutation); they are handed out one by one and the generation is told to
pymoo once every member has a result. When a worker asks while members of
the current generation are still pending, extra offspring are bred from the
current population so no worker waits. Constraints use pymoo's
constraint-domination: normalized constraint values and shortfalls below hard
objective bounds are inequality constraints (<= 0). A failed evaluation
enters as a very bad, infeasible individual.
"""

from __future__ import annotations

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2 as PymooNSGA2
from pymoo.core.evaluator import Evaluator
from pymoo.core.population import Population
from pymoo.core.problem import Problem
from pymoo.core.termination import NoTermination
from pymoo.problems.static import StaticProblem

from harness.optim._validate import check_int
from harness.optim.strategies.base import Strategy

_FAILED_VALUE = 1e6


def _key(x) -> bytes:
    return np.round(np.asarray(x, dtype=float), 9).tobytes()


class NSGA2(Strategy):
    """NSGA-II from pymoo. Options: pop_size (20)."""

    name = "nsga2"
    min_observations = 1

    def __init__(self, dim, n_objectives, n_constraints, hard, seed=0, *, pop_size: int = 20):
        super().__init__(dim, n_objectives, n_constraints, hard, seed)
        self.pop_size = check_int("pop_size", pop_size, 2)
        self.n_ieq = n_constraints + int(self.hard.sum())
        self.problem = Problem(
            n_var=dim, n_obj=n_objectives, n_ieq_constr=self.n_ieq, xl=0.0, xu=1.0
        )
        self.algorithm = None
        self._queue: list[np.ndarray] = []
        self._members: dict[bytes, np.ndarray] = {}  # key -> x, current generation
        self._results: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

    def _values(self, y, c, failed: bool):
        if failed:
            F = np.full(self.n_objectives, _FAILED_VALUE)
            G = np.full(self.n_ieq, _FAILED_VALUE)
            return F, G
        y = np.asarray(y, dtype=float)
        F = -y
        G = np.concatenate([np.asarray(c, dtype=float).reshape(-1), -y[self.hard]])
        return F, G

    def _tell(self, X: np.ndarray, F: np.ndarray, G: np.ndarray) -> None:
        pop = Population.new("X", X)
        static = StaticProblem(self.problem, F=F, G=G) if self.n_ieq else StaticProblem(
            self.problem, F=F
        )
        Evaluator().eval(static, pop)
        self.algorithm.tell(infills=pop)

    def _start(self, obs) -> None:
        self.algorithm = PymooNSGA2(pop_size=self.pop_size, sampling=obs.X.copy())
        self.algorithm.setup(self.problem, termination=NoTermination(), seed=self.seed, verbose=False)
        first = self.algorithm.ask()  # the initial design itself
        X = first.get("X")
        F, G = zip(*(self._values(obs.Y[i], obs.C[i], False) for i in range(obs.n)))
        self._tell(X, np.array(F), np.array(G).reshape(len(X), self.n_ieq))

    def _next_generation(self) -> None:
        if self._members:
            keys = list(self._members)
            X = np.array([self._members[k] for k in keys])
            F = np.array([self._results[k][0] for k in keys])
            G = np.array([self._results[k][1] for k in keys]).reshape(len(keys), self.n_ieq)
            self._tell(X, F, G)
        self._members, self._results = {}, {}
        offspring = self.algorithm.ask()
        for x in offspring.get("X"):
            self._members[_key(x)] = x
            self._queue.append(x)

    def _extra(self, count: int) -> None:
        off = self.algorithm.mating.do(self.problem, self.algorithm.pop, count, algorithm=self.algorithm)
        for x in off.get("X"):
            self._members[_key(x)] = x
            self._queue.append(x)

    def _propose(self, obs, n, rng):
        if self.algorithm is None:
            self._start(obs)
        out = []
        while len(out) < n:
            if not self._queue:
                outstanding = [k for k in self._members if k not in self._results]
                if outstanding:
                    self._extra(1)
                else:
                    self._next_generation()
                if not self._queue:  # mating produced only duplicates
                    self._queue.append(rng.random(self.dim))
            out.append(self._queue.pop(0))
        return np.array(out)

    def observe(self, x, y, c, feasible, failed):
        k = _key(x)
        if k in self._members:
            self._results[k] = self._values(y, c, failed)
