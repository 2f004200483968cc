"""Helpers of the export tests: compile generated C and compare it with TFLite Micro."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.export import codegen, host_runner, tflm
from harness.export.tflite_model import read_tflite

needs_gcc = pytest.mark.skipif(host_runner.find_host_compiler() is None, reason="no host C compiler")


def random_inputs(model_bytes: bytes, samples: int, seed: int = 0) -> np.ndarray:
    """Return `samples x input shape` uniform random int8 inputs for the model."""
    model = read_tflite(model_bytes)
    shape = model.tensors[model.inputs[0]].shape
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 128, size=(samples, *shape), dtype=np.int8)


def compare_with_tflm(
    model_bytes: bytes, out_dir: Path, inputs: np.ndarray | None = None, samples: int = 16, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Generate C for the model in `out_dir`, run it and TFLite Micro on the same inputs.

    Returns (reference, generated), both `samples x output elements` int8.
    """
    if inputs is None:
        inputs = random_inputs(model_bytes, samples, seed)
    model_path = out_dir / "model.tflite"
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path.write_bytes(model_bytes)
    model = read_tflite(model_path)
    codegen.generate_c(model, out_dir)
    reference = tflm.run_reference(model_bytes, inputs)
    generated = host_runner.run_generated(out_dir, inputs, model.tensors[model.outputs[0]].element_count)
    return reference, generated


def assert_bit_exact(reference: np.ndarray, generated: np.ndarray) -> None:
    """Assert equal arrays, reporting where the first difference is."""
    assert reference.shape == generated.shape
    mismatched = np.argwhere(reference != generated)
    assert mismatched.size == 0, (
        f"{len(mismatched)} of {reference.size} outputs differ; first at sample {mismatched[0][0]}, "
        f"element {mismatched[0][1]}: TFLM {reference[tuple(mismatched[0])]}, "
        f"generated {generated[tuple(mismatched[0])]}"
    )
