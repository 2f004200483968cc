"""Multi-objective optimizers: ARS-MOBO, its baselines, an Optuna sampler and a benchmark.

Entry points: `Optimizer` (ask/tell over the unit cube), `Objective` and
`Constraint` (directions, bounds, normalization), `StrategySampler` (any
strategy inside an Optuna study; import from `harness.optim.sampler`), and
`harness bench optimizers` (`harness.optim.bench`).
"""

from harness.optim.optimizer import BENCH_STRATEGIES, STRATEGIES, Optimizer
from harness.optim.spec import Constraint, Objective, Trial, TrialState

__all__ = [
    "BENCH_STRATEGIES",
    "STRATEGIES",
    "Constraint",
    "Objective",
    "Optimizer",
    "Trial",
    "TrialState",
]
