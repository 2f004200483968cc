"""Foreign, unsupported, corrupt and truncated `.tflite` files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

from export_helpers import assert_bit_exact, compare_with_tflm, needs_gcc
from harness.errors import ExportError, UnsupportedModelError
from harness.export.codegen import generate_c, plan_memory
from harness.export.tflite_model import read_tflite
from tflite_builder import ModelBuilder


def _converter_style_model(legacy_opcodes: bool = True, image: bool = True) -> bytes:
    """A model laid out like TensorFlow Lite converter output.

    4-D image input: CONV_2D (RELU) -> AVERAGE_POOL_2D -> RESHAPE ->
    FULLY_CONNECTED -> SOFTMAX. 2-D input: FULLY_CONNECTED -> SOFTMAX.
    """
    rng = np.random.default_rng(0)
    b = ModelBuilder()
    if image:
        x = b.tensor((1, 8, 8, 1), scale=0.02, zero_point=-128, name="input")
        w = b.tensor((4, 3, 3, 1), scale=rng.uniform(0.005, 0.02, 4), data=rng.integers(-127, 128, (4, 3, 3, 1)))
        bias = b.tensor((4,), "INT32", scale=0.0002, data=rng.integers(-500, 500, 4))
        conv = b.tensor((1, 8, 8, 4), scale=0.05, zero_point=-128)
        options = schema.Conv2DOptionsT()
        options.padding, options.strideH, options.strideW = schema.Padding.SAME, 1, 1
        options.fusedActivationFunction = 1
        b.op("CONV_2D", [x, w, bias], [conv], options)
        pooled = b.tensor((1, 1, 1, 4), scale=0.05, zero_point=-128)
        pool = schema.Pool2DOptionsT()
        pool.padding, pool.strideH, pool.strideW, pool.filterHeight, pool.filterWidth = schema.Padding.VALID, 1, 1, 8, 8
        b.op("AVERAGE_POOL_2D", [conv], [pooled], pool)
        shape = b.tensor((2,), "INT32", data=np.array([1, 4]))
        flat = b.tensor((1, 4), scale=0.05, zero_point=-128)
        reshape = schema.ReshapeOptionsT()
        reshape.newShape = [1, 4]
        b.op("RESHAPE", [pooled, shape], [flat], reshape)
        features, depth = flat, 4
    else:
        x = b.tensor((1, 20), scale=0.05, zero_point=3, name="input")
        features, depth = x, 20
    fc_w = b.tensor((3, depth), scale=0.01, data=rng.integers(-127, 128, (3, depth)))
    fc_b = b.tensor((3,), "INT32", scale=0.0005, data=rng.integers(-300, 300, 3))
    logits = b.tensor((1, 3), scale=0.08, zero_point=10)
    b.op("FULLY_CONNECTED", [features, fc_w, fc_b], [logits], schema.FullyConnectedOptionsT())
    probabilities = b.tensor((1, 3), scale=1 / 256, zero_point=-128, name="output")
    softmax = schema.SoftmaxOptionsT()
    softmax.beta = 1.0
    b.op("SOFTMAX", [logits], [probabilities], softmax)
    return b.build([x], [probabilities], legacy_opcodes=legacy_opcodes)


@needs_gcc
@pytest.mark.parametrize("image", [True, False])
def test_converter_style_model_bit_exact(image: bool, tmp_path: Path) -> None:
    model = _converter_style_model(legacy_opcodes=True, image=image)
    parsed = read_tflite(model)
    assert parsed.op_names()[-1] == "SOFTMAX"
    assert_bit_exact(*compare_with_tflm(model, tmp_path, samples=40))


def test_legacy_opcodes_read_as_builtin() -> None:
    legacy = read_tflite(_converter_style_model(legacy_opcodes=True)).op_names()
    current = read_tflite(_converter_style_model(legacy_opcodes=False)).op_names()
    assert legacy == ["CONV_2D", "AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]
    assert legacy == current


def test_unsupported_op_is_named(tmp_path: Path) -> None:
    b = ModelBuilder()
    x = b.tensor((1, 8), scale=0.1, zero_point=0)
    y = b.tensor((1, 8), scale=1 / 128, zero_point=0)
    z = b.tensor((1, 8), scale=1 / 128, zero_point=0)
    b.op("QUANTIZE", [x], [y])
    b.op("TANH", [y], [z])
    model = read_tflite(b.build([x], [z]), source="tanh_model.tflite")
    with pytest.raises(UnsupportedModelError) as info:
        generate_c(model, tmp_path)
    message = str(info.value)
    assert "TANH" in message
    assert "operator 1" in message
    assert "tanh_model.tflite" in message


def test_float_tensor_is_rejected(tmp_path: Path) -> None:
    b = ModelBuilder()
    x = b.tensor((1, 8), "FLOAT32", name="float_input")
    y = b.tensor((1, 8), scale=0.1, zero_point=0)
    b.op("QUANTIZE", [x], [y])
    model = read_tflite(b.build([x], [y]), source="float_model.tflite")
    with pytest.raises(UnsupportedModelError) as info:
        generate_c(model, tmp_path)
    message = str(info.value)
    assert "FLOAT32" in message
    assert "operator 0 (QUANTIZE)" in message
    assert "float_model.tflite" in message


def test_not_a_flatbuffer_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "random.tflite"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ExportError, match="TFLite file identifier"):
        read_tflite(path)


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "empty.tflite"
    path.write_bytes(b"")
    with pytest.raises(ExportError, match="truncated"):
        read_tflite(path)


def test_missing_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="cannot read"):
        read_tflite(tmp_path / "absent.tflite")


def test_truncated_files_are_rejected() -> None:
    model = _converter_style_model()
    rng = np.random.default_rng(1)
    cuts = sorted({8, 16, len(model) // 2, len(model) - 1, *rng.integers(9, len(model) - 1, 40).tolist()})
    for cut in cuts:
        with pytest.raises(ExportError):
            read_tflite(model[:cut], source=f"cut at {cut}")


def test_corrupted_bytes_never_crash(tmp_path: Path) -> None:
    """Overwritten bytes give C source or an ExportError (UnsupportedModelError included), nothing else."""
    model = bytearray(_converter_style_model())
    rng = np.random.default_rng(2)
    for trial in range(200):
        corrupted = bytearray(model)
        for position in rng.integers(8, len(model), 4):
            corrupted[position] = int(rng.integers(0, 256))
        try:
            generate_c(read_tflite(bytes(corrupted)), tmp_path / str(trial))
        except ExportError:
            continue


def test_memory_plan_separates_live_tensors() -> None:
    parsed = read_tflite(_converter_style_model())
    plan = plan_memory(parsed)
    sizes = {t: parsed.tensors[t].element_count for t in plan.offsets}
    for a in plan.offsets:
        for b in plan.offsets:
            if a >= b:
                continue
            live_together = plan.lifetimes[a][0] <= plan.lifetimes[b][1] and plan.lifetimes[b][0] <= plan.lifetimes[a][1]
            overlap = plan.offsets[a] < plan.offsets[b] + sizes[b] and plan.offsets[b] < plan.offsets[a] + sizes[a]
            assert not (live_together and overlap), f"tensors {a} and {b} share bytes while both live"
    assert plan.arena_bytes >= max(sizes.values())
