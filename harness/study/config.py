"""Study configuration: from a TOML file, command-line flags, or both.

A study is a dataset, a network, a search space, a board profile, a strategy,
a budget, a seed and constraints. A TOML file sets any of them; flags given
on the command line override the file. Example:

    name = "bm-an386"
    dataset = "basicmotions"
    network = "dscnn_se"
    board = "qemu-mps2-an386"
    strategy = "ars"
    trials = 30
    seed = 0
    preset = "small"

    [space]            # intervals, or a single value to fix a parameter
    epochs = [20, 60]
    lr = [1e-4, 1e-2]

    [constraints]      # upper bounds; missing ones come from the board profile
    flash_bytes = 1048576
    ram_bytes = 262144
    flops = 1e9

    [strategy_options] # keyword options of the strategy (docs/optimizers.md)
    iterations = 20
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

STRATEGIES = ("ars", "parego", "nehvi", "turbo", "morbo", "nsga2", "random")
ACCURACY_SPLITS = ("val", "test")
RUNTIMES = ("generated", "tflm")
DEFAULT_FLOPS_LIMIT = 1e9
DEFAULT_FLASH_LIMIT = 1024 * 1024
DEFAULT_RAM_LIMIT = 256 * 1024


@dataclasses.dataclass
class StudyConfig:
    """Everything that defines a study. See the module docstring for the TOML form."""

    dataset: str = "basicmotions"
    network: str = "dscnn_se"
    board: str = "qemu-mps2-an386"
    strategy: str = "ars"
    trials: int = 20
    seed: int = 0
    preset: str = "default"
    space: dict[str, Any] = dataclasses.field(default_factory=dict)
    constraints: dict[str, float] = dataclasses.field(default_factory=dict)
    name: str | None = None
    out: Path | None = None
    runtime: str = "generated"
    # Split whose device accuracy is the optimized objective; "test" exists
    # only to reproduce published tables that optimized on the test split.
    accuracy_split: str = "val"
    optimize_latency: bool = False
    initial_trials: int = 10
    calibration_samples: int = 64
    # Numeric gate of the int8 export. Top-1 agreement is looser than for a
    # single export, because barely trained networks (common early in a
    # search) have near-equal logits whose argmax flips under int8 rounding.
    # A broken conversion still fails on the logit cosine.
    gate_min_top1_agreement: float = 0.8
    gate_min_logit_cosine: float = 0.95
    max_failures: int | None = None
    storage: str | None = None
    strategy_options: dict[str, Any] = dataclasses.field(default_factory=dict)

    def validate(self) -> StudyConfig:
        """Check every field; return self.

        Raises:
            ConfigError: naming the field, the value and what is allowed.
        """
        from harness.data import DATASETS
        from harness.models import NETWORKS
        from harness.space import PRESETS

        for field in ("dataset", "network", "board", "strategy", "preset", "runtime", "accuracy_split"):
            value = getattr(self, field)
            if not isinstance(value, str):
                raise ConfigError(f"study field {field!r}: value {value!r} is invalid; allowed: a string")
        for field in ("name", "storage"):
            value = getattr(self, field)
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigError(f"study field {field!r}: value {value!r} is invalid; allowed: a non-empty string")
        if self.name is not None and ("/" in self.name or "\\" in self.name or self.name in (".", "..")):
            raise ConfigError(
                f"study field 'name': value {self.name!r} is invalid; allowed: a name without path separators"
            )
        if self.out is not None and not isinstance(self.out, (str, Path)):
            raise ConfigError(f"study field 'out': value {self.out!r} is invalid; allowed: a directory path")
        if not isinstance(self.optimize_latency, bool):
            raise ConfigError(
                f"study field 'optimize_latency': value {self.optimize_latency!r} is invalid; allowed: true or false"
            )
        if self.max_failures is not None and (
            not isinstance(self.max_failures, int) or isinstance(self.max_failures, bool) or self.max_failures < 1
        ):
            raise ConfigError(
                f"study field 'max_failures': value {self.max_failures!r} is invalid; allowed: integer >= 1"
            )
        self.dataset = self.dataset.lower()
        _choice("dataset", self.dataset, DATASETS)
        _choice("network", self.network, NETWORKS)
        _choice("strategy", self.strategy, STRATEGIES)
        _choice("preset", self.preset, PRESETS)
        _choice("runtime", self.runtime, RUNTIMES)
        _choice("accuracy_split", self.accuracy_split, ACCURACY_SPLITS)
        for field, value, minimum in (
            ("trials", self.trials, 1),
            ("initial_trials", self.initial_trials, 1),
            ("calibration_samples", self.calibration_samples, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ConfigError(f"study field {field!r}: value {value!r} is invalid; allowed: integer >= {minimum}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ConfigError(f"study field 'seed': value {self.seed!r} is invalid; allowed: integer >= 0")
        for field, value in (
            ("gate_min_top1_agreement", self.gate_min_top1_agreement),
            ("gate_min_logit_cosine", self.gate_min_logit_cosine),
        ):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
                raise ConfigError(f"study field {field!r}: value {value!r} is invalid; allowed: number in [0, 1]")
        for key, value in self.constraints.items():
            if key not in ("flash_bytes", "ram_bytes", "flops", "latency_cycles"):
                raise ConfigError(
                    f"unknown constraint {key!r}; allowed: flash_bytes, ram_bytes, flops, latency_cycles"
                )
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"constraint {key!r}: value {value!r} is invalid; allowed: finite number > 0")
        if self.optimize_latency and "latency_cycles" not in self.constraints:
            raise ConfigError(
                "optimize_latency needs a latency limit to normalize by: set constraints.latency_cycles"
            )
        self._check_strategy_options()
        # Builds the space once so that bad intervals fail before anything runs.
        space = self.search_space()
        start = next(p for p in space.all_parameters if p.name == "prune_start")
        end = next(p for p in space.all_parameters if p.name == "prune_end")
        if start.high > end.low:
            raise ConfigError(
                f"pruning intervals overlap: prune_start up to {start.high} but prune_end from {end.low}; "
                "every proposal needs prune_start <= prune_end, so keep prune_start's high <= prune_end's low"
            )
        return self

    def _check_strategy_options(self) -> None:
        """Raise ConfigError for strategy options the strategy rejects, before anything runs."""
        from harness.optim.optimizer import make_strategy

        if not isinstance(self.strategy_options, dict):
            raise ConfigError(
                f"study field 'strategy_options': value {self.strategy_options!r} is invalid; allowed: a table"
            )
        make_strategy(self.strategy, 2, 2, 0, [False, False], self.seed, **self.strategy_options)

    @property
    def study_name(self) -> str:
        return self.name or f"{self.dataset}-{self.network}-{self.board}-{self.strategy}-s{self.seed}"

    @property
    def directory(self) -> Path:
        return Path(self.out) if self.out is not None else Path("results") / self.study_name

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{(self.directory / 'study.db').resolve()}"

    def search_space(self):
        from harness.space import space_for_network

        return space_for_network(self.network, overrides=self.space, preset=self.preset)

    def as_dict(self) -> dict[str, Any]:
        record = dataclasses.asdict(self)
        record["out"] = str(self.directory)
        record["name"] = self.study_name
        return record


def _choice(field: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"study field {field!r}: value {value!r} is invalid; allowed: {', '.join(allowed)}")


_FIELDS = {f.name for f in dataclasses.fields(StudyConfig)}


def load_study_file(path: Path) -> dict[str, Any]:
    """Read a study TOML file into a dict of `StudyConfig` fields.

    Raises:
        ConfigError: unreadable TOML or unknown keys, naming the file.
    """
    try:
        content = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"study file {path} not found") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"study file {path}: invalid TOML: {err}") from err
    unknown = sorted(set(content) - _FIELDS)
    if unknown:
        raise ConfigError(f"study file {path}: unknown keys {unknown}; allowed: {sorted(_FIELDS)}")
    for table in ("space", "constraints", "strategy_options"):
        if table in content and not isinstance(content[table], dict):
            raise ConfigError(f"study file {path}: {table!r} must be a table ([{table}])")
    return content


def _split_flag(flag: str, item: str, usage: str) -> tuple[str, str]:
    """Split a `KEY=VALUE` flag value into its stripped key and value, or raise ConfigError."""
    key, sep, value = item.partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not key or not value:
        raise ConfigError(f"{flag} {item!r}: expected {usage}")
    return key, value


def parse_space_flag(items: list[str] | None) -> dict[str, Any]:
    """Parse `--param KEY=LOW:HIGH` (an interval) or `KEY=VALUE` (fixed) flags."""
    result: dict[str, Any] = {}
    for item in items or []:
        key, value = _split_flag("--param", item, "KEY=LOW:HIGH or KEY=VALUE, e.g. epochs=20:60")
        low, colon, high = value.partition(":")
        try:
            result[key] = [float(low), float(high)] if colon else float(value)
        except ValueError:
            raise ConfigError(f"--param {item!r}: {value!r} is not a number or LOW:HIGH interval") from None
    return result


def parse_strategy_option_flag(items: list[str] | None) -> dict[str, Any]:
    """Parse `--strategy-option KEY=VALUE` flags; values are Python literals, else strings."""
    from harness.optim._validate import option_value

    result: dict[str, Any] = {}
    for item in items or []:
        key, value = _split_flag("--strategy-option", item, "KEY=VALUE, e.g. iterations=10")
        if key in result:
            raise ConfigError(f"--strategy-option {item!r}: {key} is given more than once")
        result[key] = option_value(value)
    return result


def build_config(file_fields: Mapping[str, Any], flag_fields: Mapping[str, Any]) -> StudyConfig:
    """Merge TOML fields and flags (flags win; `space`, `constraints` and `strategy_options` merge per key)."""
    merged: dict[str, Any] = dict(file_fields)
    for key, value in flag_fields.items():
        if value is None:
            continue
        if key in ("space", "constraints", "strategy_options"):
            merged[key] = {**merged.get(key, {}), **value}
        else:
            merged[key] = value
    if "out" in merged and merged["out"] is not None:
        merged["out"] = Path(merged["out"])
    return StudyConfig(**merged).validate()
