"""The search space: training and compression hyperparameters on the unit cube.

Every optimizer works on the unit cube [0, 1]^d. `SearchSpace.encode` maps a
configuration into it and `SearchSpace.decode` maps a point back, applying the
log scale where a parameter has one, rounding integers and clipping to the
interval. A parameter whose interval has low == high is fixed: it takes no
dimension of the cube and always decodes to its value.

Default intervals follow the interval table of the publication that
introduced ARS-MOBO ("Neural architecture search for TinyML with
reinforcement learning", anonymous preprint) with one exception: the published weight decay interval [0.6, 0.99] cannot be
an L2 coefficient for SGD (it would erase the weights within a few steps), so
the default is [1e-6, 1e-2] on a log scale and the published interval is kept
as the preset "published".
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from harness.errors import ConfigError

SPARSITY_PREFIX = "sparsity."


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One searchable hyperparameter: its interval, scale and type."""

    name: str
    low: float
    high: float
    log: bool = False
    integer: bool = False
    default: float | None = None

    @property
    def fixed(self) -> bool:
        return self.low == self.high


@dataclasses.dataclass(frozen=True)
class _Domain:
    """The legal values of a parameter kind, independent of any search interval."""

    minimum: float
    maximum: float
    integer: bool = False
    minimum_inclusive: bool = True
    maximum_inclusive: bool = True

    def describe(self) -> str:
        left = "[" if self.minimum_inclusive else "("
        right = "]" if self.maximum_inclusive else ")"
        kind = "integer" if self.integer else "number"
        return f"{kind} in {left}{self.minimum:g}, {self.maximum:g}{right}"

    def contains(self, value: float) -> bool:
        if self.integer and float(value) != round(value):
            return False
        above = value >= self.minimum if self.minimum_inclusive else value > self.minimum
        below = value <= self.maximum if self.maximum_inclusive else value < self.maximum
        return above and below


# Legal domains: a value outside these is invalid in any study.
_DOMAINS: dict[str, _Domain] = {
    "epochs": _Domain(1, 100_000, integer=True),
    "batch_size": _Domain(1, 1_000_000, integer=True),
    "lr": _Domain(0.0, 10.0, minimum_inclusive=False),
    "momentum": _Domain(0.0, 1.0, minimum_inclusive=False, maximum_inclusive=False),
    "lr_step": _Domain(0.0, 1.0, minimum_inclusive=False),
    "lr_gamma": _Domain(0.0, 1.0, minimum_inclusive=False),
    "weight_decay": _Domain(0.0, 1.0, minimum_inclusive=False, maximum_inclusive=False),
    "prune_start": _Domain(0.0, 1.0),
    "prune_end": _Domain(0.0, 1.0),
    "prune_steps": _Domain(1, 10_000, integer=True),
    "sparsity": _Domain(0.0, 1.0, maximum_inclusive=False),
}

_TRAINING_PARAMETERS: dict[str, dict[str, Parameter]] = {
    "default": {
        "epochs": Parameter("epochs", 100, 500, integer=True, default=150),
        "batch_size": Parameter("batch_size", 20, 200, integer=True, default=20),
        "lr": Parameter("lr", 1e-5, 1e-2, log=True, default=1e-2),
        "momentum": Parameter("momentum", 0.7, 0.99, log=True, default=0.9),
        "lr_step": Parameter("lr_step", 0.4, 0.9, default=0.5),
        "lr_gamma": Parameter("lr_gamma", 0.4, 0.9, default=0.5),
        "weight_decay": Parameter("weight_decay", 1e-6, 1e-2, log=True, default=1e-4),
        "prune_start": Parameter("prune_start", 0.0, 0.6, default=0.2),
        "prune_end": Parameter("prune_end", 0.8, 0.95, default=0.8),
        "prune_steps": Parameter("prune_steps", 1, 20, integer=True, default=10),
    },
}
# The publication's weight decay interval, kept for reproducing its tables.
_TRAINING_PARAMETERS["published"] = dict(_TRAINING_PARAMETERS["default"])
_TRAINING_PARAMETERS["published"]["weight_decay"] = Parameter(
    "weight_decay", 0.6, 0.99, log=True, default=0.9
)
# Small-budget variant for tests and demos: few epochs, small batches.
_TRAINING_PARAMETERS["small"] = dict(_TRAINING_PARAMETERS["default"])
_TRAINING_PARAMETERS["small"]["epochs"] = Parameter("epochs", 2, 30, integer=True, default=10)
_TRAINING_PARAMETERS["small"]["batch_size"] = Parameter("batch_size", 8, 64, integer=True, default=16)

PRESETS = tuple(_TRAINING_PARAMETERS)
TRAINING_PARAMETER_NAMES = tuple(_TRAINING_PARAMETERS["default"])
_SPARSITY_INTERVAL = (0.1, 0.99)
_SPARSITY_DEFAULT = 0.3


def _domain_of(name: str) -> _Domain:
    if name.startswith(SPARSITY_PREFIX):
        return _DOMAINS["sparsity"]
    return _DOMAINS[name]


def check_value(name: str, value: Any) -> float:
    """Return `value` as a number after checking it is legal for parameter `name`.

    Raises:
        ConfigError: the value is not a number or lies outside the legal domain.
    """
    domain = _domain_of(name)
    if isinstance(value, bool):
        raise ConfigError(f"parameter {name!r}: value {value!r} is not a number; allowed: {domain.describe()}")
    try:
        number = float(value)
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"parameter {name!r}: value {value!r} is not a number; allowed: {domain.describe()}"
        ) from err
    if not math.isfinite(number) or not domain.contains(number):
        raise ConfigError(
            f"parameter {name!r}: value {value!r} is invalid; allowed: {domain.describe()}"
        )
    return int(round(number)) if domain.integer else number


class SearchSpace:
    """An ordered set of parameters with a unit-cube encoding.

    Args:
        parameters: every parameter, free or fixed; names must be unique.
    """

    def __init__(self, parameters: list[Parameter] | tuple[Parameter, ...]) -> None:
        names = [p.name for p in parameters]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"search space: duplicate parameter names {duplicates}")
        for parameter in parameters:
            _check_parameter(parameter)
        self.all_parameters: tuple[Parameter, ...] = tuple(parameters)
        self.parameters: tuple[Parameter, ...] = tuple(p for p in parameters if not p.fixed)
        self.fixed: dict[str, float | int] = {
            p.name: _as_type(p, p.low) for p in parameters if p.fixed
        }

    @property
    def names(self) -> list[str]:
        """Names of the free parameters, in cube order."""
        return [p.name for p in self.parameters]

    @property
    def dim(self) -> int:
        """Number of free parameters, i.e. the dimension d of the unit cube."""
        return len(self.parameters)

    @property
    def sparsity_layers(self) -> list[str]:
        """Prunable layer names, in the order of the network's pruning groups."""
        return [
            p.name[len(SPARSITY_PREFIX):]
            for p in self.all_parameters
            if p.name.startswith(SPARSITY_PREFIX)
        ]

    def bounds(self) -> np.ndarray:
        """Return the intervals of the free parameters, shape `2 x d` (low row, high row)."""
        return np.array([[p.low for p in self.parameters], [p.high for p in self.parameters]])

    def default_config(self) -> dict[str, float | int]:
        """Return every parameter at its default value (the interval's centre if none)."""
        config: dict[str, float | int] = {}
        for p in self.all_parameters:
            if p.fixed:
                config[p.name] = _as_type(p, p.low)
            elif p.default is not None and p.low <= p.default <= p.high:
                config[p.name] = _as_type(p, p.default)
            else:
                config[p.name] = self.decode_one(p, 0.5)
        return config

    def complete(self, partial: Mapping[str, Any]) -> dict[str, float | int]:
        """Fill a partial configuration with defaults after validating every given value.

        Values may lie outside the search intervals (a single evaluation may use
        any legal value), but not outside a parameter's legal domain.

        Raises:
            ConfigError: an unknown name or an illegal value.
        """
        known = {p.name for p in self.all_parameters}
        config = self.default_config()
        for name, value in partial.items():
            if name not in known:
                raise ConfigError(
                    f"unknown parameter {name!r}; known parameters: {', '.join(sorted(known))}"
                )
            config[name] = check_value(name, value)
        return config

    def encode(self, config: Mapping[str, float]) -> np.ndarray:
        """Map a configuration to the unit cube.

        Args:
            config: values for at least every free parameter; fixed ones are ignored.

        Returns:
            Array of shape `d` with entries in [0, 1] (values outside an interval are clipped).
        """
        missing = [name for name in self.names if name not in config]
        if missing:
            raise ConfigError(f"configuration is missing parameters {missing}")
        u = np.empty(self.dim)
        for i, p in enumerate(self.parameters):
            value = float(config[p.name])
            if p.log:
                u[i] = (math.log(value) - math.log(p.low)) / (math.log(p.high) - math.log(p.low))
            else:
                u[i] = (value - p.low) / (p.high - p.low)
        return np.clip(u, 0.0, 1.0)

    def decode(self, u: np.ndarray | list[float]) -> dict[str, float | int]:
        """Map a point of the unit cube (shape `d`) to a full configuration."""
        u = np.asarray(u, dtype=float)
        if u.shape != (self.dim,):
            raise ConfigError(f"expected a point of shape ({self.dim},), got {u.shape}")
        config: dict[str, float | int] = dict(self.fixed)
        for i, p in enumerate(self.parameters):
            config[p.name] = self.decode_one(p, float(u[i]))
        return {p.name: config[p.name] for p in self.all_parameters}

    @staticmethod
    def decode_one(p: Parameter, u: float) -> float | int:
        """Map one coordinate in [0, 1] to a value of parameter `p`."""
        u = min(max(u, 0.0), 1.0)
        if p.log:
            value = math.exp(math.log(p.low) + u * (math.log(p.high) - math.log(p.low)))
        else:
            value = p.low + u * (p.high - p.low)
        value = min(max(value, p.low), p.high)
        return _as_type(p, value)

    def with_overrides(self, overrides: Mapping[str, Any]) -> SearchSpace:
        """Return a copy with some intervals replaced.

        Args:
            overrides: name -> `(low, high)` for a new interval, or a single value
                to fix the parameter.

        Raises:
            ConfigError: an unknown name, low > high, or a bound outside the legal domain.
        """
        by_name = {p.name: p for p in self.all_parameters}
        for name, interval in overrides.items():
            if name not in by_name:
                raise ConfigError(
                    f"unknown parameter {name!r}; known parameters: {', '.join(sorted(by_name))}"
                )
            if isinstance(interval, (list, tuple)):
                if len(interval) != 2:
                    raise ConfigError(
                        f"parameter {name!r}: interval {interval!r} must be [low, high]"
                    )
                low, high = (check_value(name, v) for v in interval)
            else:
                low = high = check_value(name, interval)
            if low > high:
                raise ConfigError(
                    f"parameter {name!r}: interval [{low}, {high}] has low > high; "
                    f"allowed: low <= high within {_domain_of(name).describe()}"
                )
            old = by_name[name]
            by_name[name] = dataclasses.replace(old, low=low, high=high)
        return SearchSpace([by_name[p.name] for p in self.all_parameters])

    def __repr__(self) -> str:
        return f"SearchSpace(dim={self.dim}, fixed={sorted(self.fixed)})"


def _as_type(p: Parameter, value: float) -> float | int:
    return int(round(value)) if p.integer else float(value)


def _check_parameter(p: Parameter) -> None:
    domain = _domain_of(p.name) if (p.name in _DOMAINS or p.name.startswith(SPARSITY_PREFIX)) else None
    if p.low > p.high:
        raise ConfigError(
            f"parameter {p.name!r}: interval [{p.low}, {p.high}] has low > high"
        )
    if p.log and p.low <= 0:
        raise ConfigError(
            f"parameter {p.name!r}: a log-scale interval needs low > 0, got {p.low}"
        )
    if domain is not None:
        for bound in (p.low, p.high):
            if not domain.contains(bound):
                raise ConfigError(
                    f"parameter {p.name!r}: bound {bound} is invalid; allowed: {domain.describe()}"
                )


def build_space(
    prunable_layers: list[str],
    overrides: Mapping[str, Any] | None = None,
    preset: str = "default",
) -> SearchSpace:
    """Build the space for a network with the given prunable layers.

    Args:
        prunable_layers: one name per pruning group; each gets a `sparsity.<name>` parameter.
        overrides: interval overrides, as for `SearchSpace.with_overrides`.
        preset: `default`, `published` (weight decay in [0.6, 0.99]) or `small`.
    """
    if preset not in _TRAINING_PARAMETERS:
        raise ConfigError(f"unknown search space preset {preset!r}; choose one of {list(PRESETS)}")
    parameters = list(_TRAINING_PARAMETERS[preset].values())
    low, high = _SPARSITY_INTERVAL
    for layer in prunable_layers:
        parameters.append(
            Parameter(SPARSITY_PREFIX + layer, low, high, default=_SPARSITY_DEFAULT)
        )
    space = SearchSpace(parameters)
    return space.with_overrides(overrides) if overrides else space


def space_for_network(
    network: str,
    overrides: Mapping[str, Any] | None = None,
    preset: str = "default",
) -> SearchSpace:
    """Build the search space of a registered network (one sparsity per prunable layer)."""
    from harness.models import prunable_layer_names

    return build_space(prunable_layer_names(network), overrides=overrides, preset=preset)


def parse_param_assignments(items: list[str] | None) -> dict[str, str]:
    """Parse `KEY=VALUE` command-line items into a dict (values stay strings)."""
    result: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param {item!r}: expected KEY=VALUE, for example epochs=50")
        result[key.strip()] = value.strip()
    return result
