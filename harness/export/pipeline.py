"""Write an export directory from a checkpoint or from a foreign `.tflite` model.

An export directory contains:

- `model.tflite`: the int8 model, the contract between host and device;
- `model_data.h` / `model_data.cc`: the model as a C array for TFLite Micro;
- `model.h`, `model.c`, `nn_kernels.h`, `nn_kernels.c`: the generated C runtime;
- `test_inputs.npy`: int8, samples x the `.tflite` input shape (NHWC);
- `test_labels.npy`: int64 labels, absent when none are known;
- `reference_outputs.npy`: int8, samples x output elements, from the
  TFLite Micro interpreter of the `tflite-micro` wheel;
- `tflm_arena_report.txt`: the TFLite Micro allocation report at the smallest arena;
- `export.json`: figures and provenance, written last.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import ConfigError, ExportError
from harness.export import codegen, host_runner, tflm
from harness.export.gate import (
    DEFAULT_GATE_SAMPLES,
    DEFAULT_MIN_LOGIT_COSINE,
    DEFAULT_MIN_TOP1_AGREEMENT,
    GateResult,
    check_thresholds,
    numeric_gate,
    quantize_inputs,
)
from harness.export.tflite_model import TfliteModel, read_tflite

logger = logging.getLogger(__name__)

EXPORT_JSON = "export.json"
RANDOM_INPUT_SAMPLES = 100


def export_checkpoint(
    checkpoint_dir: Path,
    out_dir: Path,
    *,
    calibration_samples: int = 64,
    gate_samples: int = DEFAULT_GATE_SAMPLES,
    min_top1_agreement: float = DEFAULT_MIN_TOP1_AGREEMENT,
    min_logit_cosine: float = DEFAULT_MIN_LOGIT_COSINE,
    max_test_samples: int | None = None,
    probe_arena: bool = True,
    data_dir: Path | None = None,
) -> dict[str, Any]:
    """Convert a checkpoint saved by `harness evaluate --save` and write the export directory.

    Calibration uses the first `calibration_samples` training samples, the
    numeric gate the first `gate_samples` of the validation samples followed
    by the test samples. Returns the export.json record.
    """
    import torch

    from harness.data import load_dataset
    from harness.export.convert import convert_to_tflite
    from harness.train import load_checkpoint

    check_thresholds(min_top1_agreement, min_logit_cosine)
    if gate_samples < 1:
        raise ConfigError(f"gate_samples must be at least 1, got {gate_samples}")
    model, meta = load_checkpoint(checkpoint_dir)
    splits = load_dataset(meta["dataset"], seed=int(meta.get("seed", 0)), data_dir=data_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    # One thread: the conversion is slower with two on a shared 2-core host.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        started = time.perf_counter()
        tflite_path = out_dir / "model.tflite"
        tflite = convert_to_tflite(
            model, splits.X_train, tflite_path, min(calibration_samples, len(splits.X_train))
        )
        conversion_s = time.perf_counter() - started
    finally:
        torch.set_num_threads(threads)
    model_bytes = tflite_path.read_bytes()
    codegen.check_supported(tflite)

    # Validation and test samples are both held out from calibration; small
    # datasets need both for a gate figure that one outlier does not dominate.
    X_heldout = torch.cat([splits.X_val, splits.X_test])[:gate_samples]
    gate = numeric_gate(model, tflite, model_bytes, X_heldout, min_top1_agreement, min_logit_cosine)

    # NOTE: the TFLite Micro reference costs about 140 ms per sample for the
    # unpruned resnet_small on 28 x 28 inputs (2-core host), so a 10,000-sample
    # test split adds about 25 minutes; bound it with max_test_samples.
    X_test = splits.X_test.numpy()
    y_test = splits.y_test.numpy().astype(np.int64)
    if max_test_samples is not None:
        X_test, y_test = X_test[:max_test_samples], y_test[:max_test_samples]
    x = tflite.tensors[tflite.inputs[0]]
    test_inputs = quantize_inputs(X_test, x.scale, x.zero_point)
    record = _write_runtime_files(
        tflite, model_bytes, out_dir, test_inputs, y_test, probe_arena,
        extra={
            "source_checkpoint": str(Path(checkpoint_dir).resolve()),
            "gate": _gate_record(gate),
            "conversion_s": round(conversion_s, 2),
            "calibration_samples": min(calibration_samples, len(splits.X_train)),
            "dataset": meta.get("dataset"),
            "network": meta.get("network"),
        },
    )
    return record


def export_tflite(
    tflite_path: Path,
    out_dir: Path,
    *,
    inputs_path: Path | None = None,
    labels_path: Path | None = None,
    probe_arena: bool = True,
) -> dict[str, Any]:
    """Compile a `.tflite` model trained elsewhere and write the export directory.

    `inputs_path` is an `.npy` file of samples in the model's input layout:
    int8 values are used as they are, floats are quantized with the model's
    input scale and zero point. Without it, RANDOM_INPUT_SAMPLES uniform
    random int8 inputs (seed 0) are written, so the reference outputs still
    pin down the numerics. There is no float model, so no numeric gate.
    """
    model_bytes = _read_bytes(tflite_path)
    tflite = read_tflite(model_bytes, source=str(tflite_path))
    codegen.check_supported(tflite)
    x = tflite.tensors[tflite.inputs[0]]
    if inputs_path is not None:
        test_inputs = _load_inputs(inputs_path, x.shape, x.scale, x.zero_point)
        inputs_source = str(Path(inputs_path).resolve())
    else:
        rng = np.random.default_rng(0)
        sample_shape = _sample_shape(x.shape)
        test_inputs = rng.integers(-128, 128, size=(RANDOM_INPUT_SAMPLES, *sample_shape), dtype=np.int8)
        inputs_source = f"uniform random int8, seed 0, {RANDOM_INPUT_SAMPLES} samples"
    labels = None
    if labels_path is not None:
        labels = np.load(labels_path).astype(np.int64).ravel()
        if labels.shape[0] != test_inputs.shape[0]:
            raise ConfigError(
                f"{labels_path} has {labels.shape[0]} labels for {test_inputs.shape[0]} input samples"
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "model.tflite").write_bytes(model_bytes)
    return _write_runtime_files(
        tflite, model_bytes, out_dir, test_inputs, labels, probe_arena,
        extra={
            "source_checkpoint": None,
            "source_tflite": str(Path(tflite_path).resolve()),
            "test_inputs_source": inputs_source,
            "gate": {"top1_agreement": None, "logit_cosine": None, "samples": 0,
                     "source": "no float model for a foreign .tflite, so no gate"},
        },
    )


def _read_bytes(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err}") from err


def _sample_shape(input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Return the shape of one sample: the input shape without a leading batch dimension of 1."""
    return input_shape[1:] if input_shape and input_shape[0] == 1 else input_shape


def _load_inputs(path: Path, input_shape: tuple[int, ...], scale: float, zero_point: int) -> np.ndarray:
    """Load `samples x input shape` inputs (a leading batch dimension of 1 may be left out)."""
    try:
        data = np.load(path)
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot load inputs from {path}: {err}") from err
    sample_shape = _sample_shape(input_shape)
    sample_size = int(np.prod(sample_shape)) if sample_shape else 1
    if data.size % sample_size != 0 or data.size == 0:
        raise ConfigError(
            f"{path} has shape {list(data.shape)}, which is not samples x {list(sample_shape)} "
            "(the .tflite input layout)"
        )
    data = data.reshape(-1, *sample_shape)
    if data.dtype == np.int8:
        return data
    if np.issubdtype(data.dtype, np.floating):
        q = np.round(data.astype(np.float32) / np.float32(scale)) + zero_point
        return np.clip(q, -128, 127).astype(np.int8)
    raise ConfigError(f"{path} has dtype {data.dtype}; give int8 (quantized) or float inputs")


def _gate_record(gate: GateResult) -> dict[str, Any]:
    return {
        "top1_agreement": gate.top1_agreement,
        "logit_cosine": gate.logit_cosine,
        "samples": gate.samples,
        "source": gate.source,
    }


def _write_runtime_files(
    tflite: TfliteModel,
    model_bytes: bytes,
    out_dir: Path,
    test_inputs: np.ndarray,
    labels: np.ndarray | None,
    probe_arena: bool,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """Write everything but model.tflite, check the generated C against TFLM, then export.json."""
    x = tflite.tensors[tflite.inputs[0]]
    y = tflite.tensors[tflite.outputs[0]]
    runtime = codegen.generate_c(tflite, out_dir)
    tflm.write_c_array(model_bytes, out_dir)

    np.save(out_dir / "test_inputs.npy", test_inputs)
    labels_file = out_dir / "test_labels.npy"
    if labels is not None:
        np.save(labels_file, labels)
    elif labels_file.exists():
        labels_file.unlink()
    reference = tflm.run_reference(model_bytes, test_inputs)  # samples x output elements
    np.save(out_dir / "reference_outputs.npy", reference)
    host_int8_accuracy = None
    if labels is not None and len(labels) > 0:
        host_int8_accuracy = float(np.mean(np.argmax(reference, axis=1) == labels))

    generated_matches = _check_generated_c(out_dir, test_inputs, reference, y.element_count)
    arena = tflm.probe_arena(out_dir / "model.tflite") if probe_arena else None
    if arena is not None:
        (out_dir / "tflm_arena_report.txt").write_text(arena.report)

    record: dict[str, Any] = {
        "model_hash": tflite.model_hash,
        "host_int8_accuracy": host_int8_accuracy,
        "ops": list(tflite.op_names()),
        "input_shape": list(x.shape),
        "output_shape": list(y.shape),
        "input_scale": x.scale,
        "input_zero_point": x.zero_point,
        "output_scale": y.scale,
        "output_zero_point": y.zero_point,
        "tflm_arena_bytes": arena.arena_bytes if arena else None,
        "tflm_arena_report_bytes": arena.used_bytes if arena else None,
        "generated_arena_bytes": runtime.arena_bytes,
        "weight_bytes": runtime.weight_bytes,
        "model_bytes": len(model_bytes),
        "test_samples": int(test_inputs.shape[0]),
        "generated_matches_tflm": generated_matches,
        "sources": {
            "host_int8_accuracy": "TFLite Micro (tflite-micro wheel) outputs on test_inputs.npy",
            "tflm_arena_bytes": arena.source if arena else "not probed",
            "generated_arena_bytes": "static memory plan of the C generator",
            "weight_bytes": "constant tensors emitted as C arrays",
            "generated_matches_tflm": "host gcc build of the generated C vs reference_outputs.npy",
        },
    }
    record.update(extra)
    temporary = out_dir / (EXPORT_JSON + ".tmp")
    temporary.write_text(json.dumps(record, indent=2, sort_keys=True))
    temporary.replace(out_dir / EXPORT_JSON)
    logger.info("export written to %s (model hash %s)", out_dir, tflite.model_hash)
    return record


def _check_generated_c(out_dir: Path, test_inputs: np.ndarray, reference: np.ndarray, output_elements: int) -> bool | None:
    """Return True when the generated C reproduces the TFLM outputs, None without a host compiler."""
    if host_runner.find_host_compiler() is None:
        logger.warning("no host C compiler: the generated C was not checked against TFLite Micro")
        return None
    outputs = host_runner.run_generated(out_dir, test_inputs, output_elements)
    mismatches = int(np.count_nonzero(outputs != reference))
    if mismatches:
        raise ExportError(
            f"the generated C in {out_dir} differs from TFLite Micro in {mismatches} of {reference.size} "
            "output values; this is a bug in the C generator, so use the TFLite Micro runtime for this model"
        )
    return True
