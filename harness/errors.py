"""The harness's exception hierarchy.

Every error the harness raises on purpose derives from `HarnessError`, so the
command-line entry point can print its message instead of a traceback.
"""


class HarnessError(Exception):
    """Base class of every error raised on purpose by the harness."""


class ConfigError(HarnessError, ValueError):
    """An invalid configuration: a parameter, interval, file or flag."""


class DataError(HarnessError):
    """A dataset is unknown, missing on disk or malformed."""


class TrainingError(HarnessError):
    """Training or pruning failed (for example a diverging loss)."""


class ExportError(HarnessError):
    """Conversion to TFLite, the numeric gate or C generation failed."""


class UnsupportedModelError(ExportError):
    """A model uses an operator or tensor type the C generator does not support."""


class BuildError(HarnessError):
    """A firmware build failed for a reason other than a memory-region overflow."""


class DeviceError(HarnessError):
    """A board or emulator misbehaved: no reply, bad frame, wrong firmware."""


class DeviceTimeoutError(DeviceError, TimeoutError):
    """A board did not answer in time."""


class StudyError(HarnessError):
    """A study cannot be created, resumed or reported."""
