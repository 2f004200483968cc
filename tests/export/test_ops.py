"""Every supported operator, over a table of shapes and quantization parameters, bit-exact with TFLite Micro.

Each case builds a one- or two-operator `.tflite` model, generates C,
compiles it with the host gcc and compares its outputs on random int8
inputs with the `tflite-micro` wheel's interpreter. The default run takes a
representative subset; `-m slow` runs the whole table.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

from export_helpers import assert_bit_exact, compare_with_tflm, needs_gcc
from tflite_builder import ModelBuilder

pytestmark = needs_gcc

SAME, VALID = schema.Padding.SAME, schema.Padding.VALID
NONE, RELU, RELU_N1_TO_1, RELU6 = 0, 1, 2, 3
UNIFORM_INT8_STD = 74.0  # standard deviation of uniform values in [-128, 127]


def _out_size(size: int, kernel: int, stride: int, dilation: int, padding: int) -> int:
    effective = (kernel - 1) * dilation + 1
    if padding == SAME:
        return (size + stride - 1) // stride
    return (size - effective) // stride + 1


def _conv_model(
    in_shape: tuple[int, int, int, int], out_c: int, kernel: tuple[int, int], stride: tuple[int, int],
    dilation: tuple[int, int], padding: int, activation: int, depthwise: bool, per_channel: bool,
    input_zero_point: int, seed: int,
) -> bytes:
    rng = np.random.default_rng(seed)
    n, h, w, c = in_shape
    k_h, k_w = kernel
    out_h = _out_size(h, k_h, stride[0], dilation[0], padding)
    out_w = _out_size(w, k_w, stride[1], dilation[1], padding)
    in_scale = float(rng.uniform(0.01, 0.1))
    channels = out_c
    w_scales = rng.uniform(0.002, 0.02, size=channels) if per_channel else np.full(1, rng.uniform(0.002, 0.02))
    fan_in = k_h * k_w * (1 if depthwise else c)
    out_scale = UNIFORM_INT8_STD * UNIFORM_INT8_STD * math.sqrt(fan_in) * in_scale * float(np.mean(w_scales)) / 40.0
    b = ModelBuilder()
    x = b.tensor(in_shape, scale=in_scale, zero_point=input_zero_point)
    w_shape = (1, k_h, k_w, out_c) if depthwise else (out_c, k_h, k_w, c)
    weights = rng.integers(-127, 128, size=w_shape, dtype=np.int8)
    wt = b.tensor(w_shape, scale=w_scales, zero_point=0, data=weights, quantized_dimension=3 if depthwise else 0)
    bias = rng.integers(-20000, 20000, size=out_c).astype(np.int32)
    bt = b.tensor((out_c,), "INT32", scale=in_scale * np.resize(w_scales, out_c), zero_point=0, data=bias)
    y = b.tensor((n, out_h, out_w, out_c), scale=out_scale, zero_point=int(rng.integers(-20, 20)))
    if depthwise:
        options = schema.DepthwiseConv2DOptionsT()
        options.depthMultiplier = out_c // c
        name = "DEPTHWISE_CONV_2D"
    else:
        options = schema.Conv2DOptionsT()
        name = "CONV_2D"
    options.padding = padding
    options.strideH, options.strideW = stride
    options.dilationHFactor, options.dilationWFactor = dilation
    options.fusedActivationFunction = activation
    b.op(name, [x, wt, bt], [y], options)
    return b.build([x], [y])


# (input NHWC, out channels, kernel, stride, dilation, padding, activation, per-channel, input zero point)
CONV_CASES = [
    ((1, 1, 32, 6), 8, (1, 5), (1, 1), (1, 1), SAME, RELU, True, 3),
    ((1, 8, 8, 3), 4, (3, 3), (2, 2), (1, 1), SAME, NONE, True, -128),
    ((1, 9, 7, 4), 5, (3, 2), (2, 1), (1, 1), VALID, RELU6, True, 10),
    pytest.param((1, 1, 40, 4), 6, (1, 3), (1, 1), (1, 2), SAME, RELU_N1_TO_1, True, 0, marks=pytest.mark.slow),
    pytest.param((2, 6, 6, 2), 3, (2, 2), (1, 1), (2, 2), VALID, NONE, False, -7, marks=pytest.mark.slow),
    pytest.param((1, 5, 5, 16), 16, (1, 1), (1, 1), (1, 1), VALID, RELU, True, 127, marks=pytest.mark.slow),
    pytest.param((1, 10, 10, 3), 7, (5, 5), (3, 3), (1, 1), SAME, RELU6, False, -1, marks=pytest.mark.slow),
    pytest.param((1, 1, 64, 8), 8, (1, 7), (1, 4), (1, 1), SAME, NONE, True, 20, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("in_shape,out_c,kernel,stride,dilation,padding,activation,per_channel,zero_point", CONV_CASES)
def test_conv2d_matches_tflm(tmp_path: Path, in_shape, out_c, kernel, stride, dilation, padding, activation, per_channel, zero_point) -> None:
    model = _conv_model(in_shape, out_c, kernel, stride, dilation, padding, activation, False, per_channel, zero_point, seed=1)
    assert_bit_exact(*compare_with_tflm(model, tmp_path))


# (input NHWC, depth multiplier, kernel, stride, dilation, padding, activation, input zero point)
DEPTHWISE_CASES = [
    ((1, 1, 32, 8), 1, (1, 3), (1, 2), (1, 1), SAME, RELU, -3),
    ((1, 7, 7, 4), 2, (3, 3), (1, 1), (1, 1), VALID, RELU6, 5),
    pytest.param((1, 9, 9, 3), 1, (3, 3), (2, 2), (2, 2), SAME, NONE, -128, marks=pytest.mark.slow),
    pytest.param((1, 1, 50, 16), 1, (1, 5), (1, 1), (1, 3), VALID, RELU_N1_TO_1, 0, marks=pytest.mark.slow),
    pytest.param((2, 5, 6, 2), 3, (2, 3), (2, 1), (1, 1), SAME, NONE, 9, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("in_shape,multiplier,kernel,stride,dilation,padding,activation,zero_point", DEPTHWISE_CASES)
def test_depthwise_conv2d_matches_tflm(tmp_path: Path, in_shape, multiplier, kernel, stride, dilation, padding, activation, zero_point) -> None:
    out_c = in_shape[3] * multiplier
    model = _conv_model(in_shape, out_c, kernel, stride, dilation, padding, activation, True, True, zero_point, seed=2)
    assert_bit_exact(*compare_with_tflm(model, tmp_path))


def _fully_connected_model(in_shape: tuple[int, ...], units: int, per_channel: bool, activation: int, bias: bool, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    depth = in_shape[-1] if len(in_shape) == 2 else int(np.prod(in_shape[1:]))
    batches = int(np.prod(in_shape)) // depth
    in_scale = float(rng.uniform(0.01, 0.1))
    w_scales = rng.uniform(0.002, 0.02, size=units) if per_channel else np.full(1, 0.01)
    out_scale = UNIFORM_INT8_STD * UNIFORM_INT8_STD * math.sqrt(depth) * in_scale * float(np.mean(w_scales)) / 40.0
    b = ModelBuilder()
    x = b.tensor(in_shape, scale=in_scale, zero_point=int(rng.integers(-10, 10)))
    wt = b.tensor((units, depth), scale=w_scales, zero_point=0, data=rng.integers(-127, 128, size=(units, depth)))
    inputs = [x, wt]
    if bias:
        inputs.append(b.tensor((units,), "INT32", scale=in_scale * np.resize(w_scales, units), data=rng.integers(-9000, 9000, size=units)))
    else:
        inputs.append(-1)
    y = b.tensor((batches, units), scale=out_scale, zero_point=int(rng.integers(-10, 10)))
    options = schema.FullyConnectedOptionsT()
    options.fusedActivationFunction = activation
    b.op("FULLY_CONNECTED", inputs, [y], options)
    return b.build([x], [y])


@pytest.mark.parametrize(
    "in_shape,units,per_channel,activation,bias",
    [
        ((1, 16), 4, True, NONE, True),
        ((1, 1, 1, 24), 10, False, RELU, True),
        pytest.param((3, 20), 5, True, RELU6, False, marks=pytest.mark.slow),
        pytest.param((1, 2, 3, 8), 7, False, NONE, False, marks=pytest.mark.slow),
        pytest.param((1, 300), 12, True, RELU_N1_TO_1, True, marks=pytest.mark.slow),
    ],
)
def test_fully_connected_matches_tflm(tmp_path: Path, in_shape, units, per_channel, activation, bias) -> None:
    assert_bit_exact(*compare_with_tflm(_fully_connected_model(in_shape, units, per_channel, activation, bias, seed=3), tmp_path))


def _binary_model(op: str, shape: tuple[int, ...], other_shape: tuple[int, ...] | None, activation: int, seed: int) -> bytes:
    """ADD or MUL of the input with a constant (`other_shape`) or with a requantized copy of itself (None)."""
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    in_scale = float(rng.uniform(0.02, 0.2))
    x = b.tensor(shape, scale=in_scale, zero_point=int(rng.integers(-20, 20)))
    other_scale = float(rng.uniform(0.01, 0.3))
    if other_shape is None:
        other = b.tensor(shape, scale=other_scale, zero_point=int(rng.integers(-20, 20)))
        b.op("QUANTIZE", [x], [other])
        out_shape = shape
    else:
        other = b.tensor(other_shape, scale=other_scale, zero_point=int(rng.integers(-20, 20)),
                         data=rng.integers(-128, 128, size=other_shape))
        out_shape = tuple(np.broadcast_shapes(shape, other_shape))
    out_scale = in_scale + other_scale if op == "ADD" else in_scale * other_scale * 60.0
    y = b.tensor(out_shape, scale=out_scale, zero_point=int(rng.integers(-20, 20)))
    options = schema.AddOptionsT() if op == "ADD" else schema.MulOptionsT()
    options.fusedActivationFunction = activation
    b.op(op, [x, other], [y], options)
    return b.build([x], [y])


BINARY_CASES = [
    ("ADD", (1, 4, 4, 3), None, NONE),
    ("ADD", (1, 1, 10, 8), (1, 1, 1, 8), RELU6),
    ("MUL", (1, 1, 10, 8), (1, 1, 1, 8), NONE),
    ("MUL", (1, 5, 5, 4), None, RELU),
    pytest.param("ADD", (1, 3, 5, 2), (), RELU, marks=pytest.mark.slow),
    pytest.param("ADD", (2, 3, 4), (3, 1), RELU_N1_TO_1, marks=pytest.mark.slow),
    pytest.param("MUL", (1, 6, 1, 4), (1, 1, 5, 1), NONE, marks=pytest.mark.slow),
    pytest.param("MUL", (1, 16, 16), (), RELU6, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("op,shape,other_shape,activation", BINARY_CASES)
def test_add_mul_match_tflm(tmp_path: Path, op, shape, other_shape, activation) -> None:
    assert_bit_exact(*compare_with_tflm(_binary_model(op, shape, other_shape, activation, seed=4), tmp_path))


def _mean_model(shape: tuple[int, ...], axes: list[int], keep_dims: bool, same_scale: bool, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    in_scale = float(rng.uniform(0.02, 0.2))
    x = b.tensor(shape, scale=in_scale, zero_point=int(rng.integers(-30, 30)))
    axis = b.tensor((len(axes),), "INT32", data=np.array(axes))
    resolved = {a % len(shape) for a in axes}
    out_shape = tuple(1 if i in resolved else d for i, d in enumerate(shape)) if keep_dims else tuple(
        d for i, d in enumerate(shape) if i not in resolved)
    out_scale = in_scale if same_scale else in_scale * float(rng.uniform(0.2, 0.9))
    out_zero_point = 0 if same_scale else int(rng.integers(-30, 30))
    if same_scale:
        out_zero_point = b.tensors[x].quantization.zeroPoint[0]
    y = b.tensor(out_shape, scale=out_scale, zero_point=out_zero_point)
    options = schema.ReducerOptionsT()
    options.keepDims = keep_dims
    b.op("MEAN", [x, axis], [y], options)
    return b.build([x], [y])


@pytest.mark.parametrize(
    "shape,axes,keep_dims,same_scale",
    [
        ((1, 1, 25, 16), [1, 2], True, True),
        ((1, 6, 6, 8), [1, 2], False, False),
        pytest.param((1, 7, 3, 5), [2], True, False, marks=pytest.mark.slow),
        pytest.param((2, 4, 9), [-1], False, True, marks=pytest.mark.slow),
        pytest.param((1, 3, 5, 7), [1, 2, 3], False, False, marks=pytest.mark.slow),
        pytest.param((1, 1, 100, 3), [2, 1], True, False, marks=pytest.mark.slow),
    ],
)
def test_mean_matches_tflm(tmp_path: Path, shape, axes, keep_dims, same_scale) -> None:
    assert_bit_exact(*compare_with_tflm(_mean_model(shape, axes, keep_dims, same_scale, seed=5), tmp_path))


def _pool_model(op: str, shape: tuple[int, int, int, int], filter_hw: tuple[int, int], stride: tuple[int, int],
                padding: int, activation: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    n, h, w, c = shape
    out_h = _out_size(h, filter_hw[0], stride[0], 1, padding)
    out_w = _out_size(w, filter_hw[1], stride[1], 1, padding)
    b = ModelBuilder()
    scale, zero_point = float(rng.uniform(0.02, 0.2)), int(rng.integers(-30, 30))
    x = b.tensor(shape, scale=scale, zero_point=zero_point)
    y = b.tensor((n, out_h, out_w, c), scale=scale, zero_point=zero_point)
    options = schema.Pool2DOptionsT()
    options.padding = padding
    options.strideH, options.strideW = stride
    options.filterHeight, options.filterWidth = filter_hw
    options.fusedActivationFunction = activation
    b.op(op, [x], [y], options)
    return b.build([x], [y])


@pytest.mark.parametrize(
    "op,shape,filter_hw,stride,padding,activation",
    [
        ("AVERAGE_POOL_2D", (1, 1, 20, 4), (1, 2), (1, 2), VALID, NONE),
        ("AVERAGE_POOL_2D", (1, 7, 7, 3), (3, 3), (2, 2), SAME, RELU),
        ("MAX_POOL_2D", (1, 1, 21, 5), (1, 3), (1, 2), SAME, NONE),
        ("MAX_POOL_2D", (1, 8, 8, 2), (2, 2), (2, 2), VALID, RELU6),
        pytest.param("AVERAGE_POOL_2D", (2, 5, 9, 2), (5, 9), (1, 1), VALID, NONE, marks=pytest.mark.slow),
        pytest.param("AVERAGE_POOL_2D", (1, 6, 6, 4), (4, 4), (3, 3), SAME, RELU_N1_TO_1, marks=pytest.mark.slow),
        pytest.param("MAX_POOL_2D", (1, 9, 5, 3), (3, 2), (3, 1), SAME, RELU, marks=pytest.mark.slow),
    ],
)
def test_pooling_matches_tflm(tmp_path: Path, op, shape, filter_hw, stride, padding, activation) -> None:
    assert_bit_exact(*compare_with_tflm(_pool_model(op, shape, filter_hw, stride, padding, activation, seed=6), tmp_path))


def _shape_op_model(op: str, shape: tuple[int, ...], operand: list[int], seed: int) -> bytes:
    """PAD (operand = paddings, flattened), TRANSPOSE (permutation) or RESHAPE (new shape)."""
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    scale, zero_point = float(rng.uniform(0.02, 0.2)), int(rng.integers(-30, 30))
    x = b.tensor(shape, scale=scale, zero_point=zero_point)
    if op == "PAD":
        pairs = np.array(operand).reshape(len(shape), 2)
        out_shape = tuple(d + int(p.sum()) for d, p in zip(shape, pairs))
        second = b.tensor(pairs.shape, "INT32", data=pairs)
        options = None
    elif op == "TRANSPOSE":
        out_shape = tuple(shape[p] for p in operand)
        second = b.tensor((len(operand),), "INT32", data=np.array(operand))
        options = schema.TransposeOptionsT()
    else:
        out_shape = tuple(operand)
        second = b.tensor((len(operand),), "INT32", data=np.array(operand))
        options = schema.ReshapeOptionsT()
        options.newShape = list(operand)
    y = b.tensor(out_shape, scale=scale, zero_point=zero_point)
    b.op(op, [x, second], [y], options)
    return b.build([x], [y])


@pytest.mark.parametrize(
    "op,shape,operand",
    [
        ("PAD", (1, 1, 10, 4), [0, 0, 0, 0, 2, 1, 0, 0]),
        ("TRANSPOSE", (1, 3, 4, 5), [0, 3, 1, 2]),
        ("RESHAPE", (1, 1, 4, 6), [1, 24]),
        pytest.param("PAD", (1, 5, 5, 3), [0, 0, 1, 1, 2, 2, 0, 0], marks=pytest.mark.slow),
        pytest.param("PAD", (2, 7), [1, 0, 3, 2], marks=pytest.mark.slow),
        pytest.param("TRANSPOSE", (2, 3, 4), [2, 0, 1], marks=pytest.mark.slow),
        pytest.param("TRANSPOSE", (1, 1, 6, 5), [0, 3, 2, 1], marks=pytest.mark.slow),
        pytest.param("RESHAPE", (1, 12), [1, 3, 4, 1], marks=pytest.mark.slow),
    ],
)
def test_shape_ops_match_tflm(tmp_path: Path, op, shape, operand) -> None:
    assert_bit_exact(*compare_with_tflm(_shape_op_model(op, shape, operand, seed=7), tmp_path))


def _unary_model(op: str, shape: tuple[int, ...], in_scale: float, in_zero_point: int, out_scale: float,
                 out_zero_point: int, beta: float = 1.0) -> bytes:
    b = ModelBuilder()
    x = b.tensor(shape, scale=in_scale, zero_point=in_zero_point)
    y = b.tensor(shape, scale=out_scale, zero_point=out_zero_point)
    options = None
    if op == "SOFTMAX":
        options = schema.SoftmaxOptionsT()
        options.beta = beta
    b.op(op, [x], [y], options)
    return b.build([x], [y])


UNARY_CASES = [
    ("HARD_SWISH", (1, 1, 16, 16), 0.05, -10, 0.03, -90, 1.0),
    ("HARD_SWISH", (1, 4, 4, 8), 0.2, 30, 0.1, -100, 1.0),
    ("LOGISTIC", (1, 1, 1, 64), 0.06, 5, 1 / 256, -128, 1.0),
    ("LOGISTIC", (1, 3, 3, 10), 0.01, -40, 1 / 256, -128, 1.0),
    ("SOFTMAX", (1, 10), 0.1, 20, 1 / 256, -128, 1.0),
    ("SOFTMAX", (1, 1, 3, 7), 0.05, -3, 1 / 256, -128, 0.5),
    ("QUANTIZE", (1, 2, 5, 6), 0.05, 3, 0.08, -7, 1.0),
    pytest.param("HARD_SWISH", (1, 8, 8), 0.01, 0, 0.008, -120, 1.0, marks=pytest.mark.slow),
    pytest.param("HARD_SWISH", (2, 50), 0.5, -128, 0.4, -110, 1.0, marks=pytest.mark.slow),
    pytest.param("HARD_SWISH", (1, 100), 0.003, 17, 0.0025, -5, 1.0, marks=pytest.mark.slow),
    pytest.param("LOGISTIC", (1, 128), 0.2, 0, 1 / 256, -128, 1.0, marks=pytest.mark.slow),
    pytest.param("LOGISTIC", (2, 3, 5), 0.001, 100, 1 / 256, -128, 1.0, marks=pytest.mark.slow),
    pytest.param("SOFTMAX", (3, 5), 0.3, 0, 1 / 256, -128, 1.0, marks=pytest.mark.slow),
    pytest.param("SOFTMAX", (1, 100), 0.02, -50, 1 / 256, -128, 2.0, marks=pytest.mark.slow),
    pytest.param("SOFTMAX", (2, 2, 2, 4), 1.0, 10, 1 / 256, -128, 1.0, marks=pytest.mark.slow),
    pytest.param("QUANTIZE", (1, 40), 0.5, -100, 0.01, 50, 1.0, marks=pytest.mark.slow),
    pytest.param("QUANTIZE", (1, 40), 0.01, 0, 0.01, 0, 1.0, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("op,shape,in_scale,in_zero_point,out_scale,out_zero_point,beta", UNARY_CASES)
def test_unary_ops_match_tflm(tmp_path: Path, op, shape, in_scale, in_zero_point, out_scale, out_zero_point, beta) -> None:
    model = _unary_model(op, shape, in_scale, in_zero_point, out_scale, out_zero_point, beta)
    # Every int8 value at least once: these ops are functions of single values or rows.
    samples = 32
    assert_bit_exact(*compare_with_tflm(model, tmp_path, samples=samples, seed=8))


@pytest.mark.parametrize("op", ["HARD_SWISH", "LOGISTIC"])
def test_elementwise_ops_all_int8_values(tmp_path: Path, op: str) -> None:
    out = (0.02, -100) if op == "HARD_SWISH" else (1 / 256, -128)
    model = _unary_model(op, (1, 256), 0.04, 7, out[0], out[1])
    inputs = np.arange(-128, 128, dtype=np.int8).reshape(1, 1, 256)
    assert_bit_exact(*compare_with_tflm(model, tmp_path, inputs=inputs))
