"""Interrupt requests (Ctrl-C, SIGTERM) that survive libraries swallowing them.

A signal handler raises KeyboardInterrupt wherever Python happens to run.
When that is a callback whose exceptions a library drops (JAX's garbage
collection callback during the int8 export, for one), the interrupt would be
lost. The handler therefore also records the request, and the study checks
it between stages and after every trial.
"""

from __future__ import annotations

import signal
import threading

_requested = threading.Event()
_signal_number: list[int] = []


def _handle(signum: int, _frame) -> None:
    _requested.set()
    _signal_number.append(signum)
    raise KeyboardInterrupt(f"signal {signum}")


def install() -> None:
    """Route SIGINT and SIGTERM through the recording handler (main thread only)."""
    signal.signal(signal.SIGINT, _handle)
    signal.signal(signal.SIGTERM, _handle)


def requested() -> bool:
    return _requested.is_set()


def check() -> None:
    """Raise KeyboardInterrupt if an interrupt was requested and not yet acted on."""
    if _requested.is_set():
        raise KeyboardInterrupt("interrupt requested earlier")


def exit_status() -> int:
    """Return the shell's status for the signal received: 128 + its number (130 for Ctrl-C)."""
    return 128 + (_signal_number[0] if _signal_number else signal.SIGINT)
