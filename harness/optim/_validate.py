"""Argument checks whose messages name the argument, the allowed range and the value."""

from __future__ import annotations

import ast
import math
import numbers

from harness.errors import ConfigError

#: the largest accepted thread count: torch.set_num_threads raises on huge values, but only mid-run
MAX_THREADS = 1024


def option_value(text: str):
    """Return the Python literal written in `text` (number, bool, list...), else `text` itself.

    Strategy options given on a command line arrive as strings.
    """
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, RecursionError, MemoryError):
        return text


def _shown(value, limit: int = 60) -> str:
    """Return repr(value), shortened so that a huge input does not flood the error message."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _range_text(low, high, low_open: bool = False, high_open: bool = False) -> str:
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    lo = "-inf" if low is None else repr(low)
    hi = "inf" if high is None else repr(high)
    return f"{left}{lo}, {hi}{right}"


def check_int(name: str, value, low: int | None = None, high: int | None = None) -> int:
    """Return `value` as an int, or raise ConfigError naming `name`, the range and the value."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(
            f"argument `{name}` must be an integer in {_range_text(low, high)}, got {_shown(value)}"
        )
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(
            f"argument `{name}` must be an integer in {_range_text(low, high)}, got {_shown(value)}"
        )
    return value


def check_float(
    name: str,
    value,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return `value` as a finite float in the range, or raise ConfigError."""
    rng = _range_text(low, high, low_open, high_open)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"argument `{name}` must be a number in {rng}, got {_shown(value)}")
    value = float(value)
    bad = not math.isfinite(value)
    if low is not None:
        bad |= value <= low if low_open else value < low
    if high is not None:
        bad |= value >= high if high_open else value > high
    if bad:
        raise ConfigError(f"argument `{name}` must be a number in {rng}, got {_shown(value)}")
    return value


def check_bool(name: str, value) -> bool:
    """Return `value` if it is a bool, else raise ConfigError (the string "false" is not False)."""
    if not isinstance(value, bool):
        raise ConfigError(f"argument `{name}` must be True or False, got {_shown(value)}")
    return value


def check_choice(name: str, value, choices) -> str:
    """Return `value` if it is one of `choices`, else raise ConfigError listing them."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ConfigError(f"argument `{name}` must be one of {listed}, got {_shown(value)}")
    return value
