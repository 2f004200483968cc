"""Objectives, constraints, trial states and the normalization every strategy shares.

Strategies receive normalized values only. Each objective is mapped to a
value that is maximized, equals 0 at its bound (the constraint or reference
value) and 1 at its ideal value,

    y = (value - bound) / (ideal - bound)

so a minimized objective with ideal 0 becomes ``1 - value / limit`` (flash /
flash limit, ...) and accuracy with bound 0 and ideal 1 stays accuracy. The
hypervolume is computed on these values with the reference point at the
origin. A *hard* bound is a constraint: a point whose normalized value is
below 0 is infeasible. Explicit constraints are upper bounds; their
normalized value ``(value - upper) / scale`` must be at most 0.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numpy as np

from harness.errors import ConfigError
from harness.optim._validate import check_choice, check_float

MAXIMIZE = "maximize"
MINIMIZE = "minimize"


@dataclass(frozen=True)
class Objective:
    """One objective.

    Args:
        name: label used in results and error messages.
        direction: ``"maximize"`` or ``"minimize"``.
        bound: the worst acceptable value, the reference of the hypervolume.
            For a minimized objective it is the upper limit (flash limit,
            ...); for a maximized one the floor (0 for accuracy).
        ideal: the best value one can hope for; scales the objective to
            [0, 1] between bound and ideal. Defaults: 0 when minimizing,
            1 when maximizing.
        hard: when True, a value worse than `bound` makes the point
            infeasible (the design's memory and FLOPs limits); when False the
            bound is only the hypervolume reference (benchmark functions).
    """

    name: str
    direction: str = MINIMIZE
    bound: float | None = None
    ideal: float | None = None
    hard: bool = True

    def __post_init__(self) -> None:
        check_choice(f"objective {self.name!r} direction", self.direction, (MAXIMIZE, MINIMIZE))
        bound = self.bound
        if bound is None:
            if self.direction == MINIMIZE:
                raise ConfigError(
                    f"argument `bound` of minimized objective {self.name!r} is required "
                    "(its constraint or reference value), got None"
                )
            bound = 0.0
        ideal = self.ideal
        if ideal is None:
            ideal = 0.0 if self.direction == MINIMIZE else 1.0
        check_float(f"objective {self.name!r} bound", bound)
        check_float(f"objective {self.name!r} ideal", ideal)
        if self.direction == MINIMIZE and not ideal < bound:
            raise ConfigError(
                f"argument `ideal` of minimized objective {self.name!r} must be below its "
                f"bound {bound!r}, got {ideal!r}"
            )
        if self.direction == MAXIMIZE and not ideal > bound:
            raise ConfigError(
                f"argument `ideal` of maximized objective {self.name!r} must be above its "
                f"bound {bound!r}, got {ideal!r}"
            )
        object.__setattr__(self, "bound", float(bound))
        object.__setattr__(self, "ideal", float(ideal))

    def normalize(self, value):
        """Map raw values to the maximized scale: 0 at the bound, 1 at the ideal."""
        return (np.asarray(value, dtype=float) - self.bound) / (self.ideal - self.bound)

    def denormalize(self, y):
        """Inverse of `normalize`."""
        return self.bound + np.asarray(y, dtype=float) * (self.ideal - self.bound)


@dataclass(frozen=True)
class Constraint:
    """An explicit constraint ``value <= upper``, normalized as ``(value - upper) / scale``.

    `scale` defaults to ``|upper|`` (so the normalized value is ``value/upper - 1``
    for a positive limit) and to 1 when the limit is 0.
    """

    name: str
    upper: float = 0.0
    scale: float | None = None

    def __post_init__(self) -> None:
        check_float(f"constraint {self.name!r} upper", self.upper)
        scale = self.scale
        if scale is None:
            scale = abs(self.upper) if self.upper != 0 else 1.0
        check_float(f"constraint {self.name!r} scale", scale, low=0.0, low_open=True)
        object.__setattr__(self, "upper", float(self.upper))
        object.__setattr__(self, "scale", float(scale))

    def normalize(self, value):
        """Normalized value; the constraint holds when it is at most 0."""
        return (np.asarray(value, dtype=float) - self.upper) / self.scale


class TrialState(str, enum.Enum):
    """Explicit outcome of an evaluation; no NaN ever stands for a missing value."""

    PENDING = "pending"
    COMPLETE = "complete"  # evaluated and feasible
    INFEASIBLE = "infeasible"  # evaluated, violates a constraint or a hard bound
    FAILED = "failed"  # the evaluation itself failed; no values


@dataclass
class Trial:
    """One evaluation as the optimizer records it."""

    number: int
    x: np.ndarray
    state: TrialState
    objectives: np.ndarray | None = None  # raw values, objective order
    constraints: np.ndarray | None = None  # raw values, constraint order
    y: np.ndarray | None = None  # normalized objectives (maximized, 0 at the bound)
    c: np.ndarray | None = None  # normalized constraints (<= 0 holds)
    violation: float = 0.0  # sum of positive normalized violations
    reason: str | None = None  # why a FAILED trial failed
    proposal_seconds: float = 0.0
    source: str = ""  # "initial", a strategy name, or "external"
    info: dict = field(default_factory=dict)

    @property
    def evaluated(self) -> bool:
        return self.state in (TrialState.COMPLETE, TrialState.INFEASIBLE)

    @property
    def feasible(self) -> bool:
        return self.state == TrialState.COMPLETE


def violation_of(y: np.ndarray, c: np.ndarray, hard: np.ndarray) -> np.ndarray:
    """Total normalized violation of rows of (y, c): hard bounds (y < 0) plus constraints (c > 0)."""
    y = np.atleast_2d(y)
    c = np.atleast_2d(c) if c is not None and np.size(c) else np.zeros((y.shape[0], 0))
    v = np.clip(-y[:, hard], 0.0, None).sum(-1) if hard.any() else np.zeros(y.shape[0])
    if c.shape[-1]:
        v = v + np.clip(c, 0.0, None).sum(-1)
    return v


def check_finite(name: str, values: np.ndarray) -> None:
    bad = [i for i, v in enumerate(np.ravel(values)) if not math.isfinite(float(v))]
    if bad:
        raise ConfigError(
            f"argument `{name}` must hold finite numbers, got {np.ravel(values).tolist()!r} "
            "(report a failed evaluation with tell_failed instead)"
        )
