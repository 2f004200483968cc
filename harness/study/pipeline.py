"""One study trial end to end: train, export, build, measure on the board.

Artifacts go to `<study>/trials/<n>/`. `checkpoint/` contains the pruned model;
`export/` the `.tflite`, C array, generated C and int8 test set; `export/val/`
the same model with the validation split. The firmware build directories keep
the ELF and linker map, and `metrics.json` every number with its source.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import fcntl
import json
import logging
import os
import shutil
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from harness.data import DatasetSplits
from harness.errors import HarnessError
from harness.study import interrupts
from harness.study.config import StudyConfig

log = logging.getLogger(__name__)

# Receives a short description of what the trial is doing now.
StageCallback = Callable[[str], None]


class TrialState(str, enum.Enum):
    COMPLETE = "complete"
    INFEASIBLE = "infeasible"
    FAILED = "failed"


@dataclasses.dataclass
class TrialOutcome:
    """The result of one trial.

    Attributes:
        objectives: accuracy, flash_bytes, ram_bytes, flops (and latency_cycles
            when optimized); None for a failed trial.
        constraints: normalized slack per constraint, `value / limit - 1`
            (feasible when every entry is <= 0); None for a failed trial.
        metrics: the full record written to `metrics.json`.
    """

    state: TrialState
    objectives: dict[str, float] | None
    constraints: dict[str, float] | None
    metrics: dict[str, Any]
    error: str | None = None
    stage: str | None = None


def constraint_limits(config: StudyConfig, board_constraints: dict[str, float]) -> dict[str, float]:
    """Return the upper bound of every constrained objective: study file, else board, else default."""
    from harness.study.config import DEFAULT_FLASH_LIMIT, DEFAULT_FLOPS_LIMIT, DEFAULT_RAM_LIMIT

    limits = {
        "flash_bytes": float(board_constraints.get("flash_bytes", DEFAULT_FLASH_LIMIT)),
        "ram_bytes": float(board_constraints.get("ram_bytes", DEFAULT_RAM_LIMIT)),
        "flops": float(board_constraints.get("flops", DEFAULT_FLOPS_LIMIT)),
    }
    if "latency_cycles" in board_constraints:
        limits["latency_cycles"] = float(board_constraints["latency_cycles"])
    limits.update({k: float(v) for k, v in config.constraints.items()})
    return limits


@contextlib.contextmanager
def board_lock(profile) -> Iterator[None]:
    """Hold an exclusive lock on a real board for the device stage.

    Workers of one study on one host take turns on each attached board. An
    emulated board needs no lock, because every trial starts its own emulator.
    The lock is an `flock` on a file under `$HARNESS_LOCK_DIR` (default
    `/tmp/harness-locks`), released by the kernel if the worker dies.
    """
    if profile.emulated:
        yield
        return
    directory = Path(os.environ.get("HARNESS_LOCK_DIR", "/tmp/harness-locks"))
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / f"{profile.name}.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("board %s is busy with another trial; waiting for it", profile.name)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_validation_view(export_dir: Path, splits: DatasetSplits) -> Path:
    """Write `export/val/`: the exported model with the validation split as its input set.

    The model and C files are linked, not copied, so the device runs the very
    model that was exported. Inputs are quantized as the export quantized the
    test split, and the reference outputs come from the TFLite Micro interpreter.
    """
    from harness.export.gate import quantize_inputs
    from harness.export.tflm import run_reference

    meta = json.loads((export_dir / "export.json").read_text())
    view = export_dir / "val"
    if view.exists():
        shutil.rmtree(view)
    view.mkdir()
    for path in export_dir.iterdir():
        if path.is_file() and path.suffix not in (".npy", ".json"):
            (view / path.name).symlink_to(path.resolve())
    inputs = quantize_inputs(splits.X_val.numpy(), meta["input_scale"], meta["input_zero_point"])
    labels = splits.y_val.numpy().astype(np.int64)
    reference = run_reference((export_dir / "model.tflite").read_bytes(), inputs)
    np.save(view / "test_inputs.npy", inputs)
    np.save(view / "test_labels.npy", labels)
    np.save(view / "reference_outputs.npy", reference)
    meta["host_int8_accuracy"] = float(np.mean(reference.argmax(axis=1) == labels))
    meta["split"] = "val"
    (view / "export.json").write_text(json.dumps(meta, indent=2))
    return view


def _overflow_estimate(profile, result: dict[str, Any]) -> dict[str, Any]:
    """Turn a linker overflow into flash/RAM figures: region size + overflow, else a lower bound."""
    sizes = {"flash": profile.region("flash").length, "ram": profile.region("ram").length}
    kind_of = {region.name: region.kind for region in profile.memory}
    figures = {"flash_bytes": sizes["flash"], "ram_bytes": sizes["ram"]}
    sources = {
        "flash_bytes": "lower bound: flash region size (the linker stopped before sizing flash)",
        "ram_bytes": "lower bound: RAM region size (the linker stopped before sizing RAM)",
    }
    for overflow in result["overflows"]:
        kind = kind_of.get(overflow["region"], "flash")
        key = f"{kind}_bytes"
        figures[key] = max(figures[key], sizes[kind] + int(overflow["overflow_bytes"]))
        sources[key] = f"linker: region {overflow['region']} overflowed by {overflow['overflow_bytes']} bytes"
    return {"figures": figures, "sources": sources}


def run_trial(
    config: StudyConfig,
    profile,
    params: dict[str, Any],
    trial_dir: Path,
    splits: DatasetSplits,
    on_stage: StageCallback | None = None,
    on_epoch: Callable[[int, int, float], None] | None = None,
) -> TrialOutcome:
    """Run every stage of one trial and return its outcome.

    Any `Exception` raised inside a stage becomes a FAILED outcome naming the
    stage. KeyboardInterrupt propagates, so the runner can record the trial
    and stop.
    """
    from harness.evaluate import evaluate_config
    from harness.export.pipeline import export_checkpoint
    from harness.hil.deploy import deploy

    trial_dir.mkdir(parents=True, exist_ok=True)
    limits = constraint_limits(config, dict(profile.constraints))
    metrics: dict[str, Any] = {"params": params, "board": profile.name, "runtime": config.runtime, "limits": limits}
    stage = "train"

    def enter(name: str, detail: str) -> None:
        nonlocal stage
        interrupts.check()
        stage = name
        if on_stage is not None:
            on_stage(detail)

    try:
        enter("train", "training")
        host = evaluate_config(
            config.dataset, config.network, params, seed=config.seed, preset=config.preset,
            splits=splits, save_dir=trial_dir / "checkpoint", on_epoch=on_epoch,
        )
        metrics["host"] = host

        enter("export", "int8 export and numeric gate")
        export_dir = trial_dir / "export"
        exported = export_checkpoint(
            trial_dir / "checkpoint",
            export_dir,
            calibration_samples=config.calibration_samples,
            min_top1_agreement=config.gate_min_top1_agreement,
            min_logit_cosine=config.gate_min_logit_cosine,
        )
        metrics["export"] = exported

        enter("device", f"build and run on {profile.name}")
        with board_lock(profile):
            test_run = deploy(profile, export_dir, config.runtime, out_dir=trial_dir / "firmware").as_dict()
            metrics["device_test"] = test_run
            if not test_run["feasible"] and test_run["flash_bytes"] is None:
                return _overflow_outcome(config, profile, trial_dir, metrics, host, exported, test_run, limits)
            val_view = _write_validation_view(export_dir, splits)
            val_run = deploy(profile, val_view, config.runtime, out_dir=trial_dir / "firmware-val").as_dict()
            metrics["device_val"] = val_run
    except KeyboardInterrupt:
        raise
    except HarnessError as err:
        return _failed(metrics, trial_dir, stage, f"{type(err).__name__}: {err}")
    except Exception as err:  # noqa: BLE001 - one trial's bug must not end the study
        log.exception("trial in %s failed with an unexpected error", trial_dir)
        detail = "".join(traceback.format_exception_only(type(err), err)).strip()
        return _failed(metrics, trial_dir, stage, f"unexpected {detail}")

    accuracy_run = val_run if config.accuracy_split == "val" else test_run
    objectives = {
        "accuracy": float(accuracy_run["device_accuracy"]),
        "flash_bytes": float(test_run["flash_bytes"]),
        "ram_bytes": float(test_run["ram_bytes"]),
        "flops": float(host["flops"]),
    }
    if "latency_cycles" in limits:
        objectives["latency_cycles"] = float(test_run["latency_cycles"])
    metrics.update(
        objectives=objectives,
        val_accuracy_device=val_run["device_accuracy"],
        test_accuracy_device=test_run["device_accuracy"],
        test_accuracy_host_float=host["test_accuracy"],
        latency_cycles=test_run["latency_cycles"],
        latency_source=test_run["latency_source"],
        sources={
            "accuracy": f"device, {config.accuracy_split} split, {profile.name} ({config.runtime} runtime)",
            "flash_bytes": test_run["memory_source"],
            "ram_bytes": test_run["memory_source"],
            "flops": host["sources"]["flops"],
            "latency_cycles": test_run["latency_source"],
        },
    )
    return _finish(metrics, trial_dir, objectives, limits)


def _overflow_outcome(config, profile, trial_dir, metrics, host, exported, test_run, limits) -> TrialOutcome:
    estimate = _overflow_estimate(profile, test_run)
    split_accuracy = host["val_accuracy"] if config.accuracy_split == "val" else host["test_accuracy"]
    objectives = {
        "accuracy": float(split_accuracy),
        "flash_bytes": float(estimate["figures"]["flash_bytes"]),
        "ram_bytes": float(estimate["figures"]["ram_bytes"]),
        "flops": float(host["flops"]),
    }
    latency_source = {}
    if "latency_cycles" in limits:
        # Not measurable because the firmware does not link; twice the limit
        # keeps the stored value finite and clearly infeasible.
        objectives["latency_cycles"] = 2.0 * limits["latency_cycles"]
        latency_source = {"latency_cycles": "not measured (firmware did not link): set to twice the limit"}
    metrics.update(
        objectives=objectives,
        overflows=test_run["overflows"],
        sources={
            "accuracy": f"host float32 PyTorch, {config.accuracy_split} split (firmware did not link)",
            **estimate["sources"],
            "flops": host["sources"]["flops"],
            **latency_source,
        },
    )
    return _finish(metrics, trial_dir, objectives, limits)


def _finish(metrics, trial_dir: Path, objectives, limits) -> TrialOutcome:
    constraints = {key: objectives[key] / limit - 1.0 for key, limit in limits.items() if key in objectives}
    feasible = all(value <= 0 for value in constraints.values()) and "overflows" not in metrics
    state = TrialState.COMPLETE if feasible else TrialState.INFEASIBLE
    metrics.update(state=state.value, constraints=constraints, feasible=feasible)
    _write_metrics(trial_dir, metrics)
    return TrialOutcome(state, objectives, constraints, metrics)


def _failed(metrics: dict[str, Any], trial_dir: Path, stage: str, error: str) -> TrialOutcome:
    metrics.update(state=TrialState.FAILED.value, stage=stage, error=error)
    _write_metrics(trial_dir, metrics)
    log.warning("trial %s failed in stage %s: %s", trial_dir.name, stage, error)
    return TrialOutcome(TrialState.FAILED, None, None, metrics, error=error, stage=stage)


def _write_metrics(trial_dir: Path, metrics: dict[str, Any]) -> None:
    temporary = trial_dir / "metrics.json.tmp"
    temporary.write_text(json.dumps(metrics, indent=2, sort_keys=True, default=str))
    temporary.replace(trial_dir / "metrics.json")
