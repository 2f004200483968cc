"""Compile an int8 `.tflite` model into plain C99 (`model.h`, `model.c`, `nn_kernels.[ch]`).

The generated runtime has a fixed interface:

    int model_invoke(const int8_t *input, int8_t *output);   /* 0 on success */

plus the macros MODEL_INPUT_BYTES, MODEL_OUTPUT_BYTES, MODEL_ARENA_BYTES,
MODEL_INPUT_SCALE, MODEL_INPUT_ZERO_POINT, MODEL_OUTPUT_SCALE,
MODEL_OUTPUT_ZERO_POINT and MODEL_HASH. Everything a kernel needs is
computed here (the Prepare step of TFLite Micro): fixed-point multipliers,
padding, activation ranges, broadcast strides and a static memory plan.
Weights become `const` arrays so a linker places them in flash; all
intermediate tensors share one static arena; nothing is allocated at run
time. The model input is read in place from `input` and the last operator
writes straight into `output`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from harness.errors import ExportError, UnsupportedModelError
from harness.export import quant
from harness.export.tflite_model import Operator, Tensor, TfliteModel

logger = logging.getLogger(__name__)

SUPPORTED_OPS = (
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
    "ADD",
    "MUL",
    "MEAN",
    "AVERAGE_POOL_2D",
    "MAX_POOL_2D",
    "PAD",
    "RESHAPE",
    "TRANSPOSE",
    "HARD_SWISH",
    "LOGISTIC",
    "SOFTMAX",
    "QUANTIZE",
)
MAX_RANK = 6
ARENA_ALIGNMENT_BYTES = 8
# Extra randomized placement orders the memory planner tries (each costs O(tensors^2)).
PLAN_RANDOM_ORDERS = 64
KERNEL_FILES = ("nn_kernels.h", "nn_kernels.c")


@dataclasses.dataclass(frozen=True)
class MemoryPlan:
    """Arena offsets (bytes) of the run-time tensors, and the arena size."""

    offsets: dict[int, int]
    arena_bytes: int
    lifetimes: dict[int, tuple[int, int]]


@dataclasses.dataclass(frozen=True)
class GeneratedRuntime:
    """Summary of a `generate_c` run: files written, arena and weight bytes, operator list."""

    files: tuple[Path, ...]
    arena_bytes: int
    weight_bytes: int
    ops: tuple[str, ...]


# ---- Validation --------------------------------------------------------------


def check_supported(model: TfliteModel) -> None:
    """Raise UnsupportedModelError for an operator or tensor type the generator cannot compile."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UnsupportedModelError(
            f"model {model.source} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
            "the generated C interface takes exactly one input and one output"
        )
    for op in model.operators:
        if op.name not in SUPPORTED_OPS:
            raise UnsupportedModelError(
                f"operator {op.index} of model {model.source} is {op.name}, which the C generator "
                f"does not support (supported: {', '.join(SUPPORTED_OPS)})"
            )
        for tensor_index in op.inputs + op.outputs:
            if tensor_index < 0:
                continue
            tensor = model.tensors[tensor_index]
            constant = tensor.data is not None
            if tensor.type_name == "INT8" or (tensor.type_name == "INT32" and constant):
                continue
            kind = "constant" if constant else "run-time"
            raise UnsupportedModelError(
                f"operator {op.index} ({op.name}) of model {model.source} uses {kind} tensor "
                f"{tensor_index} '{tensor.name}' of type {tensor.type_name}; the C generator "
                "supports int8 tensors and int32 constants only (export a fully int8-quantized model)"
            )
        for tensor_index in op.outputs:
            if model.tensors[tensor_index].data is not None:
                raise UnsupportedModelError(
                    f"operator {op.index} ({op.name}) of model {model.source} writes into constant "
                    f"tensor {tensor_index}; the C generator cannot compile it"
                )
    for tensor_index in model.inputs + model.outputs:
        tensor = model.tensors[tensor_index]
        if tensor.type_name != "INT8":
            raise UnsupportedModelError(
                f"model {model.source}: graph input/output tensor {tensor_index} '{tensor.name}' "
                f"has type {tensor.type_name}; the C interface needs int8 input and output"
            )


# ---- Memory plan -------------------------------------------------------------


def plan_memory(model: TfliteModel) -> MemoryPlan:
    """Place every intermediate tensor in one arena with a greedy first-fit.

    A tensor lives from the operator that writes it to the last operator that
    reads it; two tensors may share bytes only when their lifetimes do not
    overlap. The graph input and output live outside the arena.
    """
    external = set(model.inputs) | set(model.outputs)
    lifetimes: dict[int, tuple[int, int]] = {}
    for op in model.operators:
        for tensor_index in op.outputs:
            if tensor_index in external:
                continue
            first, last = lifetimes.get(tensor_index, (op.index, op.index))
            lifetimes[tensor_index] = (min(first, op.index), max(last, op.index))
        for tensor_index in op.inputs:
            if tensor_index < 0 or tensor_index in external or model.tensors[tensor_index].data is not None:
                continue
            if tensor_index not in lifetimes:
                raise ExportError(
                    f"model {model.source}: operator {op.index} ({op.name}) reads tensor {tensor_index} "
                    "before any operator writes it; the operators are not in execution order"
                )
            first, last = lifetimes[tensor_index]
            lifetimes[tensor_index] = (first, max(last, op.index))

    def aligned_size(tensor_index: int) -> int:
        size = model.tensors[tensor_index].element_count
        return (size + ARENA_ALIGNMENT_BYTES - 1) // ARENA_ALIGNMENT_BYTES * ARENA_ALIGNMENT_BYTES

    # No plan can beat the largest total size of tensors alive at one operator.
    lower_bound = max(
        (sum(aligned_size(t) for t, (first, last) in lifetimes.items() if first <= k <= last)
         for k in range(len(model.operators))),
        default=0,
    )
    # First-fit depends on the placement order: start from decreasing size,
    # then try seeded random perturbations of the sizes, keeping the best plan.
    rng = np.random.default_rng(0)
    best_offsets, best_bytes = _first_fit(
        sorted(lifetimes, key=lambda t: (-aligned_size(t), lifetimes[t][0], t)), lifetimes, aligned_size
    )
    for _ in range(PLAN_RANDOM_ORDERS):
        if best_bytes <= lower_bound:
            break
        noise = {t: float(rng.uniform(0.7, 1.3)) for t in lifetimes}
        order = sorted(lifetimes, key=lambda t: (-aligned_size(t) * noise[t], t))
        offsets, arena_bytes = _first_fit(order, lifetimes, aligned_size)
        if arena_bytes < best_bytes:
            best_offsets, best_bytes = offsets, arena_bytes
    offsets, arena_bytes = best_offsets, best_bytes
    return MemoryPlan(offsets, arena_bytes, lifetimes)


def _first_fit(
    order: list[int], lifetimes: dict[int, tuple[int, int]], aligned_size: Callable[[int], int]
) -> tuple[dict[int, int], int]:
    """Place tensors in `order` at the lowest offset free during their lifetime; return offsets and arena size."""
    offsets: dict[int, int] = {}
    arena_bytes = 0
    for tensor_index in order:
        first, last = lifetimes[tensor_index]
        size = aligned_size(tensor_index)
        # Address ranges of already placed tensors alive at the same time.
        busy = sorted(
            (offsets[other], offsets[other] + aligned_size(other))
            for other in offsets
            if lifetimes[other][0] <= last and first <= lifetimes[other][1]
        )
        offset = 0
        for start, end in busy:
            if offset + size <= start:
                break
            offset = max(offset, end)
        offsets[tensor_index] = offset
        arena_bytes = max(arena_bytes, offset + size)
    return offsets, arena_bytes


# ---- Lowering of each operator -----------------------------------------------


class _Emitter:
    """Collect C declarations (constants, parameter structs) and invoke statements."""

    def __init__(self, model: TfliteModel, plan: MemoryPlan) -> None:
        self.model = model
        self.plan = plan
        self.declarations: list[str] = []
        self.statements: list[str] = []
        self.emitted_constants: set[int] = set()
        self.weight_bytes = 0

    def where(self, op: Operator) -> str:
        return f"operator {op.index} ({op.name}) of model {self.model.source}"

    def tensor(self, index: int) -> Tensor:
        return self.model.tensors[index]

    def pointer(self, index: int) -> str:
        """C expression for the data of tensor `index`."""
        if index == self.model.inputs[0]:
            return "input"
        if index == self.model.outputs[0]:
            return "output"
        tensor = self.tensor(index)
        if tensor.data is not None:
            return self.constant(index)
        return f"(g_arena.bytes + {self.plan.offsets[index]})"

    def constant(self, index: int) -> str:
        """Emit tensor `index` as a const array once and return its name."""
        tensor = self.tensor(index)
        name = f"g_tensor{index}"
        int8 = tensor.type_name == "INT8"
        if index not in self.emitted_constants:
            assert tensor.data is not None
            if int8:
                self.declarations.append(_c_bytes(name, tensor.data.ravel()))
            else:
                self.declarations.append(_c_array("static const int32_t", name, tensor.data.ravel()))
            self.emitted_constants.add(index)
            self.weight_bytes += tensor.data.nbytes
        return f"((const int8_t *)&{name})" if int8 else name

    def int_array(self, name: str, values: list[int]) -> str:
        self.declarations.append(_c_array("static const int32_t", name, np.asarray(values, dtype=np.int64)))
        return name

    def struct(self, ctype: str, name: str, fields: dict[str, object]) -> str:
        lines = [f"static const {ctype} {name} = {{"]
        for field, value in fields.items():
            lines.append(f"    .{field} = {_c_value(value)},")
        lines.append("};")
        self.declarations.append("\n".join(lines))
        return name


def _c_value(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f".{k} = {_c_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "{" + ", ".join(_c_value(v) for v in value) + "}"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, np.integer)):
        value = int(value)
        if value == -(1 << 31):
            return "INT32_MIN"
        return str(value)
    return str(value)


# C99 requires compilers to accept string literals of 4095 characters; longer
# ones draw -pedantic's -Woverlength-strings.
_STRING_PIECE_BYTES = 4095
_STRING_LINE_BYTES = 32


def _c_bytes(name: str, values: np.ndarray) -> str:
    """Declare int8 `values` as a struct of char arrays initialized from string literals.

    The same bytes as a brace list of decimal numbers, but a compiler reads
    one string token per line instead of a token per byte:
    arm-none-eabi-gcc 12 compiled 460,000 bytes in 0.16 s against 1.91 s.
    The kernels read the struct through a pointer to its first byte, so the
    pieces must be contiguous. Char arrays have alignment 1, and GCC and
    Clang add no padding between them. A typedef with a negative array size
    stops the build on a compiler that pads, instead of letting it read
    wrong weights.
    """
    data = np.ascontiguousarray(values, dtype=np.int8).view(np.uint8).tobytes() or b"\0"
    members = []
    initializers = []
    for number, start in enumerate(range(0, len(data), _STRING_PIECE_BYTES)):
        piece = data[start : start + _STRING_PIECE_BYTES]
        members.append(f"    int8_t piece{number}[{len(piece)}];")
        lines = [
            '"' + "".join(f"\\x{byte:02x}" for byte in piece[offset : offset + _STRING_LINE_BYTES]) + '"'
            for offset in range(0, len(piece), _STRING_LINE_BYTES)
        ]
        initializers.append("    " + "\n    ".join(lines))
    declaration = (
        "static const struct {\n" + "\n".join(members) + f"\n}} {name} = {{\n" + ",\n".join(initializers) + "\n};"
    )
    check = f"typedef char {name}_is_contiguous[sizeof({name}) == {len(data)} ? 1 : -1];"
    return declaration + "\n" + check


def _c_array(qualifier: str, name: str, values: np.ndarray) -> str:
    items = [str(int(v)) if int(v) != -(1 << 31) else "INT32_MIN" for v in values.tolist()]
    if not items:
        items = ["0"]
    rows = [", ".join(items[i : i + 24]) for i in range(0, len(items), 24)]
    body = ",\n    ".join(rows)
    return f"{qualifier} {name}[{len(items)}] = {{\n    {body}\n}};"


def _options(emitter: _Emitter, op: Operator, option_type: type) -> object:
    if op.options is None:
        raise ExportError(f"{emitter.where(op)} has no options table; the file is corrupt")
    if not isinstance(op.options, option_type):
        raise ExportError(
            f"{emitter.where(op)} has options of type {type(op.options).__name__}, "
            f"expected {option_type.__name__}; the file is corrupt"
        )
    return op.options


def _nhwc(emitter: _Emitter, op: Operator, tensor: Tensor, what: str) -> tuple[int, int, int, int]:
    if len(tensor.shape) != 4:
        raise UnsupportedModelError(
            f"{emitter.where(op)}: {what} has shape {list(tensor.shape)}, expected 4-D NHWC"
        )
    n, h, w, c = tensor.shape
    return n, h, w, c


def _check_symmetric_filter(emitter: _Emitter, op: Operator, tensor: Tensor) -> None:
    if any(z != 0 for z in tensor.zero_points):
        raise UnsupportedModelError(
            f"{emitter.where(op)}: filter zero points {list(tensor.zero_points)[:4]} are not 0; "
            "int8 convolutions need symmetric weights"
        )


def _bias(emitter: _Emitter, op: Operator, channels: int) -> str:
    if len(op.inputs) < 3 or op.inputs[2] < 0:
        return "NULL"
    bias = emitter.tensor(op.inputs[2])
    if bias.type_name != "INT32" or bias.data is None or bias.element_count != channels:
        raise UnsupportedModelError(
            f"{emitter.where(op)}: bias tensor {bias.index} must be a constant int32 vector of "
            f"{channels} entries, found {bias.type_name} {list(bias.shape)}"
        )
    return emitter.constant(bias.index)


def _lower_conv(e: _Emitter, op: Operator) -> None:
    options = _options(e, op, schema.Conv2DOptionsT)
    x, w, y = e.tensor(op.inputs[0]), e.tensor(op.inputs[1]), e.tensor(op.outputs[0])
    n, in_h, in_w, in_c = _nhwc(e, op, x, "input")
    _, out_h, out_w, out_c = _nhwc(e, op, y, "output")
    oc, k_h, k_w, filter_in_c = _nhwc(e, op, w, "filter")
    if oc != out_c or filter_in_c <= 0 or in_c % filter_in_c != 0 or out_c % (in_c // filter_in_c) != 0:
        raise UnsupportedModelError(
            f"{e.where(op)}: filter shape {list(w.shape)} does not match input {list(x.shape)} "
            f"and output {list(y.shape)}"
        )
    _check_symmetric_filter(e, op, w)
    same = options.padding == schema.Padding.SAME
    dilation_h, dilation_w = max(1, options.dilationHFactor), max(1, options.dilationWFactor)
    multipliers, shifts = quant.conv_multipliers(x.scale, w.scales, y.scale, out_c)
    act_min, act_max = quant.activation_range(options.fusedActivationFunction, y.scale, y.zero_point, e.where(op))
    name = f"g_op{op.index}"
    params = e.struct(
        "nn_conv_params",
        name,
        {
            "batches": n, "in_h": in_h, "in_w": in_w, "in_c": in_c,
            "out_h": out_h, "out_w": out_w, "out_c": out_c,
            "k_h": k_h, "k_w": k_w, "filter_in_c": filter_in_c,
            "stride_h": options.strideH, "stride_w": options.strideW,
            "dilation_h": dilation_h, "dilation_w": dilation_w,
            "pad_h": quant.leading_padding(in_h, k_h, options.strideH, dilation_h, same),
            "pad_w": quant.leading_padding(in_w, k_w, options.strideW, dilation_w, same),
            "input_offset": -x.zero_point, "output_offset": y.zero_point,
            "act_min": act_min, "act_max": act_max,
            "weights": e.constant(w.index),
            "bias": _bias(e, op, out_c),
            "multiplier": e.int_array(f"{name}_multiplier", multipliers),
            "shift": e.int_array(f"{name}_shift", shifts),
        },
    )
    e.statements.append(f"nn_conv2d(&{params}, {e.pointer(x.index)}, {e.pointer(y.index)});")


def _lower_depthwise(e: _Emitter, op: Operator) -> None:
    options = _options(e, op, schema.DepthwiseConv2DOptionsT)
    x, w, y = e.tensor(op.inputs[0]), e.tensor(op.inputs[1]), e.tensor(op.outputs[0])
    n, in_h, in_w, in_c = _nhwc(e, op, x, "input")
    _, out_h, out_w, out_c = _nhwc(e, op, y, "output")
    _, k_h, k_w, filter_c = _nhwc(e, op, w, "filter")
    if filter_c != out_c or out_c % in_c != 0:
        raise UnsupportedModelError(
            f"{e.where(op)}: filter shape {list(w.shape)} does not match input {list(x.shape)} "
            f"and output {list(y.shape)}"
        )
    _check_symmetric_filter(e, op, w)
    same = options.padding == schema.Padding.SAME
    dilation_h, dilation_w = max(1, options.dilationHFactor), max(1, options.dilationWFactor)
    multipliers, shifts = quant.conv_multipliers(x.scale, w.scales, y.scale, out_c)
    act_min, act_max = quant.activation_range(options.fusedActivationFunction, y.scale, y.zero_point, e.where(op))
    name = f"g_op{op.index}"
    params = e.struct(
        "nn_depthwise_params",
        name,
        {
            "batches": n, "in_h": in_h, "in_w": in_w, "in_c": in_c,
            "out_h": out_h, "out_w": out_w, "out_c": out_c, "depth_multiplier": out_c // in_c,
            "k_h": k_h, "k_w": k_w,
            "stride_h": options.strideH, "stride_w": options.strideW,
            "dilation_h": dilation_h, "dilation_w": dilation_w,
            "pad_h": quant.leading_padding(in_h, k_h, options.strideH, dilation_h, same),
            "pad_w": quant.leading_padding(in_w, k_w, options.strideW, dilation_w, same),
            "input_offset": -x.zero_point, "output_offset": y.zero_point,
            "act_min": act_min, "act_max": act_max,
            "weights": e.constant(w.index),
            "bias": _bias(e, op, out_c),
            "multiplier": e.int_array(f"{name}_multiplier", multipliers),
            "shift": e.int_array(f"{name}_shift", shifts),
        },
    )
    e.statements.append(f"nn_depthwise_conv2d(&{params}, {e.pointer(x.index)}, {e.pointer(y.index)});")


def _lower_fully_connected(e: _Emitter, op: Operator) -> None:
    options = op.options if op.options is not None else schema.FullyConnectedOptionsT()
    x, w, y = e.tensor(op.inputs[0]), e.tensor(op.inputs[1]), e.tensor(op.outputs[0])
    if len(w.shape) != 2 or w.data is None:
        raise UnsupportedModelError(f"{e.where(op)}: weights must be a constant 2-D tensor, found {list(w.shape)}")
    if getattr(options, "weightsFormat", 0) != 0:
        raise UnsupportedModelError(f"{e.where(op)}: shuffled weight formats are not supported")
    out_depth, accum_depth = w.shape
    batches = y.element_count // out_depth
    if batches * accum_depth != x.element_count or batches * out_depth != y.element_count:
        raise UnsupportedModelError(
            f"{e.where(op)}: input {list(x.shape)} and output {list(y.shape)} do not match weights {list(w.shape)}"
        )
    per_channel = len(w.scales) > 1
    channels = out_depth if per_channel else 1
    multipliers, shifts = quant.conv_multipliers(x.scale, w.scales, y.scale, channels)
    act_min, act_max = quant.activation_range(options.fusedActivationFunction, y.scale, y.zero_point, e.where(op))
    name = f"g_op{op.index}"
    params = e.struct(
        "nn_fully_connected_params",
        name,
        {
            "batches": batches, "accum_depth": accum_depth, "out_depth": out_depth,
            "per_channel": per_channel,
            "input_offset": -x.zero_point, "filter_offset": -w.zero_point, "output_offset": y.zero_point,
            "act_min": act_min, "act_max": act_max,
            "weights": e.constant(w.index),
            "bias": _bias(e, op, out_depth),
            "multiplier": e.int_array(f"{name}_multiplier", multipliers),
            "shift": e.int_array(f"{name}_shift", shifts),
        },
    )
    e.statements.append(f"nn_fully_connected(&{params}, {e.pointer(x.index)}, {e.pointer(y.index)});")


def _padded_shape(shape: tuple[int, ...], where: str) -> list[int]:
    if len(shape) > MAX_RANK:
        raise UnsupportedModelError(f"{where}: rank {len(shape)} exceeds the supported {MAX_RANK}")
    return [1] * (MAX_RANK - len(shape)) + list(shape)


def _row_major_strides(dims: list[int]) -> list[int]:
    strides = [0] * len(dims)
    stride = 1
    for axis in range(len(dims) - 1, -1, -1):
        strides[axis] = stride
        stride *= dims[axis]
    return strides


def _broadcast_shape(e: _Emitter, op: Operator, a: Tensor, b: Tensor, y: Tensor) -> dict[str, object]:
    where = e.where(op)
    out_dims = _padded_shape(y.shape, where)
    fields: dict[str, object] = {"count": y.element_count}
    broadcast = False
    for key, tensor in (("in1_strides", a), ("in2_strides", b)):
        dims = _padded_shape(tensor.shape, where)
        strides = _row_major_strides(dims)
        for axis in range(MAX_RANK):
            if dims[axis] == out_dims[axis]:
                continue
            if dims[axis] != 1:
                raise UnsupportedModelError(
                    f"{where}: shapes {list(a.shape)} and {list(b.shape)} do not broadcast to {list(y.shape)}"
                )
            strides[axis] = 0
            broadcast = True
        if tensor.element_count != y.element_count:
            broadcast = True
        fields[key] = strides
    fields["broadcast"] = broadcast
    fields["out_dims"] = out_dims
    return fields


def _lower_add(e: _Emitter, op: Operator) -> None:
    options = op.options if op.options is not None else schema.AddOptionsT()
    a, b, y = e.tensor(op.inputs[0]), e.tensor(op.inputs[1]), e.tensor(op.outputs[0])
    left_shift = 20
    twice_max_input_scale = 2.0 * float(max(np.float32(a.scale), np.float32(b.scale)))
    m1, s1 = quant.quantize_multiplier(float(a.scale) / twice_max_input_scale)
    m2, s2 = quant.quantize_multiplier(float(b.scale) / twice_max_input_scale)
    mo, so = quant.quantize_multiplier(twice_max_input_scale / ((1 << left_shift) * float(y.scale)))
    act_min, act_max = quant.activation_range(options.fusedActivationFunction, y.scale, y.zero_point, e.where(op))
    params = e.struct(
        "nn_add_params",
        f"g_op{op.index}",
        {
            "shape": _broadcast_shape(e, op, a, b, y),
            "input1_offset": -a.zero_point, "input2_offset": -b.zero_point, "output_offset": y.zero_point,
            "left_shift": left_shift,
            "input1_multiplier": m1, "input1_shift": s1,
            "input2_multiplier": m2, "input2_shift": s2,
            "output_multiplier": mo, "output_shift": so,
            "act_min": act_min, "act_max": act_max,
        },
    )
    e.statements.append(
        f"nn_add(&{params}, {e.pointer(a.index)}, {e.pointer(b.index)}, {e.pointer(y.index)});"
    )


def _lower_mul(e: _Emitter, op: Operator) -> None:
    options = op.options if op.options is not None else schema.MulOptionsT()
    a, b, y = e.tensor(op.inputs[0]), e.tensor(op.inputs[1]), e.tensor(op.outputs[0])
    multiplier, shift = quant.quantize_multiplier(float(a.scale) * float(b.scale) / float(y.scale))
    act_min, act_max = quant.activation_range(options.fusedActivationFunction, y.scale, y.zero_point, e.where(op))
    params = e.struct(
        "nn_mul_params",
        f"g_op{op.index}",
        {
            "shape": _broadcast_shape(e, op, a, b, y),
            "input1_offset": -a.zero_point, "input2_offset": -b.zero_point, "output_offset": y.zero_point,
            "output_multiplier": multiplier, "output_shift": shift,
            "act_min": act_min, "act_max": act_max,
        },
    )
    e.statements.append(
        f"nn_mul(&{params}, {e.pointer(a.index)}, {e.pointer(b.index)}, {e.pointer(y.index)});"
    )


def _constant_ints(e: _Emitter, op: Operator, position: int, what: str) -> list[int]:
    if len(op.inputs) <= position or op.inputs[position] < 0:
        raise UnsupportedModelError(f"{e.where(op)}: the {what} operand is missing")
    tensor = e.tensor(op.inputs[position])
    if tensor.data is None:
        raise UnsupportedModelError(
            f"{e.where(op)}: the {what} operand (tensor {tensor.index}) is computed at run time; "
            "the C generator needs it constant"
        )
    return [int(v) for v in tensor.data.ravel()]


def _lower_mean(e: _Emitter, op: Operator) -> None:
    x, y = e.tensor(op.inputs[0]), e.tensor(op.outputs[0])
    rank = len(x.shape)
    axes: list[int] = []
    for axis in _constant_ints(e, op, 1, "axis"):
        resolved = axis + rank if axis < 0 else axis
        if not 0 <= resolved < rank:
            raise ExportError(f"{e.where(op)}: axis {axis} is out of range for rank {rank}")
        if resolved not in axes:
            axes.append(resolved)
    strides = _row_major_strides(list(x.shape))
    kept = [a for a in range(rank) if a not in axes]
    reduced = sorted(axes)
    reduce_count = int(np.prod([x.shape[a] for a in reduced], dtype=np.int64)) if reduced else 1
    multiplier, shift = quant.quantize_multiplier(float(x.scale) / float(y.scale))
    if reduce_count > 0:
        # Fold the division by the element count into the multiplier, as the reference does.
        extra = min(reduce_count.bit_length() - 1, 32, 31 + shift)
        multiplier = ((multiplier << extra) // reduce_count) if extra >= 0 else (multiplier >> -extra) // reduce_count
        shift -= extra

    def pad(values: list[int]) -> list[int]:
        return values + [1] * (MAX_RANK - len(values))

    params = e.struct(
        "nn_mean_params",
        f"g_op{op.index}",
        {
            "out_count": y.element_count, "reduce_count": reduce_count,
            "kept_rank": len(kept), "reduced_rank": len(reduced),
            "kept_dims": pad([x.shape[a] for a in kept]), "kept_strides": pad([strides[a] for a in kept]),
            "reduced_dims": pad([x.shape[a] for a in reduced]),
            "reduced_strides": pad([strides[a] for a in reduced]),
            "input_zero_point": x.zero_point, "output_zero_point": y.zero_point,
            "multiplier": multiplier, "shift": shift,
        },
    )
    e.statements.append(f"nn_mean(&{params}, {e.pointer(x.index)}, {e.pointer(y.index)});")


def _lower_pool(e: _Emitter, op: Operator) -> None:
    options = _options(e, op, schema.Pool2DOptionsT)
    x, y = e.tensor(op.inputs[0]), e.tensor(op.outputs[0])
    n, in_h, in_w, c = _nhwc(e, op, x, "input")
    _, out_h, out_w, _ = _nhwc(e, op, y, "output")
    same = options.padding == schema.Padding.SAME
    act_min, act_max = quant.activation_range(options.fusedActivationFunction, y.scale, y.zero_point, e.where(op))
    params = e.struct(
        "nn_pool_params",
        f"g_op{op.index}",
        {
            "batches": n, "in_h": in_h, "in_w": in_w, "channels": c, "out_h": out_h, "out_w": out_w,
            "filter_h": options.filterHeight, "filter_w": options.filterWidth,
            "stride_h": options.strideH, "stride_w": options.strideW,
            "pad_h": quant.leading_padding(in_h, options.filterHeight, options.strideH, 1, same),
            "pad_w": quant.leading_padding(in_w, options.filterWidth, options.strideW, 1, same),
            "act_min": act_min, "act_max": act_max,
        },
    )
    function = "nn_average_pool" if op.name == "AVERAGE_POOL_2D" else "nn_max_pool"
    e.statements.append(f"{function}(&{params}, {e.pointer(x.index)}, {e.pointer(y.index)});")


def _lower_pad(e: _Emitter, op: Operator) -> None:
    x, y = e.tensor(op.inputs[0]), e.tensor(op.outputs[0])
    paddings = _constant_ints(e, op, 1, "paddings")
    rank = len(x.shape)
    if len(paddings) != 2 * rank:
        raise ExportError(f"{e.where(op)}: paddings has {len(paddings)} values, expected {2 * rank}")
    before = [paddings[2 * a] for a in range(rank)]
    if any(p < 0 for p in paddings):
        raise UnsupportedModelError(f"{e.where(op)}: negative paddings {paddings} are not supported")
    where = e.where(op)
    params = e.struct(
        "nn_pad_params",
        f"g_op{op.index}",
        {
            "in_count": x.element_count, "out_count": y.element_count,
            "in_dims": _padded_shape(x.shape, where),
            "out_strides": _row_major_strides(_padded_shape(y.shape, where)),
            "before": [0] * (MAX_RANK - rank) + before,
            "pad_value": y.zero_point,
        },
    )
    e.statements.append(f"nn_pad(&{params}, {e.pointer(x.index)}, {e.pointer(y.index)});")


def _lower_reshape(e: _Emitter, op: Operator) -> None:
    x, y = e.tensor(op.inputs[0]), e.tensor(op.outputs[0])
    if x.element_count != y.element_count:
        raise ExportError(
            f"{e.where(op)}: input {list(x.shape)} and output {list(y.shape)} differ in element count"
        )
    e.statements.append(f"nn_copy({y.element_count}, {e.pointer(x.index)}, {e.pointer(y.index)});")


def _lower_transpose(e: _Emitter, op: Operator) -> None:
    x, y = e.tensor(op.inputs[0]), e.tensor(op.outputs[0])
    perm = _constant_ints(e, op, 1, "permutation")
    rank = len(x.shape)
    if sorted(perm) != list(range(rank)) or rank > MAX_RANK:
        raise UnsupportedModelError(f"{e.where(op)}: permutation {perm} is invalid for rank {rank}")
    in_strides = _row_major_strides(list(x.shape))
    params = e.struct(
        "nn_transpose_params",
        f"g_op{op.index}",
        {
            "count": y.element_count, "rank": rank,
            "out_dims": [x.shape[p] for p in perm] + [1] * (MAX_RANK - rank),
            "in_strides": [in_strides[p] for p in perm] + [0] * (MAX_RANK - rank),
        },
    )
    e.statements.append(f"nn_transpose(&{params}, {e.pointer(x.index)}, {e.pointer(y.index)});")


def _lower_hard_swish(e: _Emitter, op: Operator) -> None:
    x, y = e.tensor(op.inputs[0]), e.tensor(op.outputs[0])
    # float32 arithmetic, as in the reference Prepare step.
    hires_input_scale = np.float32(1.0 / 128.0) * np.float32(x.scale)
    reluish_scale = np.float32(3.0 / 32768.0)
    output_multiplier, output_exponent = quant.quantize_multiplier(float(np.float32(hires_input_scale / np.float32(y.scale))))
    reluish_multiplier, reluish_exponent = quant.quantize_multiplier(float(np.float32(hires_input_scale / reluish_scale)))
    if output_exponent > 0:
        raise UnsupportedModelError(
            f"{e.where(op)}: output scale {y.scale} is too small for the input scale {x.scale} "
            "(the int8 HARD_SWISH kernel needs a multiplier below 1)"
        )
    params = e.struct(
        "nn_hard_swish_params",
        f"g_op{op.index}",
        {
            "count": y.element_count, "input_zero_point": x.zero_point, "output_zero_point": y.zero_point,
            "output_multiplier": quant.downscale_multiplier_to_int16(output_multiplier),
            "output_exponent": output_exponent,
            "reluish_multiplier": quant.downscale_multiplier_to_int16(reluish_multiplier),
            "reluish_exponent": reluish_exponent,
        },
    )
    e.statements.append(f"nn_hard_swish(&{params}, {e.pointer(x.index)}, {e.pointer(y.index)});")


def _check_probability_output(e: _Emitter, op: Operator, y: Tensor) -> None:
    if y.zero_point != -128 or abs(y.scale - 1.0 / 256.0) > 1e-3 / 256.0:
        raise UnsupportedModelError(
            f"{e.where(op)}: int8 output must have scale 1/256 and zero point -128, "
            f"found scale {y.scale} and zero point {y.zero_point}"
        )


def _lower_logistic(e: _Emitter, op: Operator) -> None:
    x, y = e.tensor(op.inputs[0]), e.tensor(op.outputs[0])
    _check_probability_output(e, op, y)
    input_integer_bits = 4
    real = float(x.scale) * float(1 << (31 - input_integer_bits))
    significand, left_shift = np.frexp(real)
    multiplier = quant.round_half_away(float(significand) * (1 << 31))
    if multiplier == 1 << 31:
        # The reference stores this value in an int32 without correction, so it wraps.
        multiplier = -(1 << 31)
    left_shift = int(left_shift)
    if not 0 <= left_shift <= 30:
        raise UnsupportedModelError(f"{e.where(op)}: input scale {x.scale} is outside the LOGISTIC kernel's range")
    params = e.struct(
        "nn_logistic_params",
        f"g_op{op.index}",
        {
            "count": y.element_count, "input_zero_point": x.zero_point,
            "input_range_radius": quant.calculate_input_radius(input_integer_bits, left_shift),
            "input_multiplier": multiplier, "input_left_shift": left_shift,
        },
    )
    e.statements.append(f"nn_logistic(&{params}, {e.pointer(x.index)}, {e.pointer(y.index)});")


def _lower_softmax(e: _Emitter, op: Operator) -> None:
    options = op.options if op.options is not None else schema.SoftmaxOptionsT()
    x, y = e.tensor(op.inputs[0]), e.tensor(op.outputs[0])
    _check_probability_output(e, op, y)
    scaled_diff_integer_bits = 5
    beta = float(np.float32(options.beta))
    real = min(beta * float(x.scale) * (1 << (31 - scaled_diff_integer_bits)), (1 << 31) - 1.0)
    multiplier, left_shift = quant.quantize_multiplier(real)
    if left_shift < 0:
        raise UnsupportedModelError(f"{e.where(op)}: input scale {x.scale} times beta {beta} is too small")
    depth = x.shape[-1] if x.shape else 1
    params = e.struct(
        "nn_softmax_params",
        f"g_op{op.index}",
        {
            "outer": x.element_count // depth, "depth": depth,
            "input_multiplier": multiplier, "input_left_shift": left_shift,
            "diff_min": -quant.calculate_input_radius(scaled_diff_integer_bits, left_shift),
        },
    )
    e.statements.append(f"nn_softmax(&{params}, {e.pointer(x.index)}, {e.pointer(y.index)});")


def _lower_quantize(e: _Emitter, op: Operator) -> None:
    x, y = e.tensor(op.inputs[0]), e.tensor(op.outputs[0])
    multiplier, shift = quant.quantize_multiplier(float(x.scale) / float(y.scale))
    params = e.struct(
        "nn_requantize_params",
        f"g_op{op.index}",
        {
            "count": y.element_count, "input_zero_point": x.zero_point, "output_zero_point": y.zero_point,
            "multiplier": multiplier, "shift": shift,
        },
    )
    e.statements.append(f"nn_requantize(&{params}, {e.pointer(x.index)}, {e.pointer(y.index)});")


_LOWERINGS: dict[str, Callable[[_Emitter, Operator], None]] = {
    "CONV_2D": _lower_conv,
    "DEPTHWISE_CONV_2D": _lower_depthwise,
    "FULLY_CONNECTED": _lower_fully_connected,
    "ADD": _lower_add,
    "MUL": _lower_mul,
    "MEAN": _lower_mean,
    "AVERAGE_POOL_2D": _lower_pool,
    "MAX_POOL_2D": _lower_pool,
    "PAD": _lower_pad,
    "RESHAPE": _lower_reshape,
    "TRANSPOSE": _lower_transpose,
    "HARD_SWISH": _lower_hard_swish,
    "LOGISTIC": _lower_logistic,
    "SOFTMAX": _lower_softmax,
    "QUANTIZE": _lower_quantize,
}


# ---- Output files ------------------------------------------------------------


def _c_float(value: float) -> str:
    """Return a C float literal that reads back as the same float32 (9 significant digits)."""
    return f"{float(np.float32(value)):.9e}f"


def generate_c(model: TfliteModel, out_dir: Path) -> GeneratedRuntime:
    """Write `model.h`, `model.c` and the kernel library for `model` into `out_dir`.

    Raises UnsupportedModelError for operators or tensor types outside the
    supported set, naming the operator, its index and the model.
    """
    check_supported(model)
    plan = plan_memory(model)
    emitter = _Emitter(model, plan)
    for op in model.operators:
        try:
            _LOWERINGS[op.name](emitter, op)
        except (ExportError, UnsupportedModelError):
            raise
        except (ArithmeticError, ValueError, IndexError, TypeError, AttributeError) as err:
            raise ExportError(
                f"{emitter.where(op)} has invalid parameters ({type(err).__name__}: {err}); "
                "the file is corrupt or the operator is malformed"
            ) from err
    input_tensor = model.tensors[model.inputs[0]]
    output_tensor = model.tensors[model.outputs[0]]
    if model.inputs[0] == model.outputs[0] or not model.operators:
        emitter.statements.append(f"nn_copy({input_tensor.element_count}, input, output);")

    out_dir.mkdir(parents=True, exist_ok=True)
    header = _model_header(model, input_tensor, output_tensor, plan.arena_bytes)
    source = _model_source(model, emitter, plan.arena_bytes)
    (out_dir / "model.h").write_text(header)
    (out_dir / "model.c").write_text(source)
    files = [out_dir / "model.h", out_dir / "model.c"]
    runtime = resources.files("harness.export") / "runtime"
    for name in KERNEL_FILES:
        target = out_dir / name
        target.write_text((runtime / name).read_text())
        files.append(target)
    logger.info(
        "generated C for %s: %d operators, arena %d bytes, weights %d bytes",
        model.source, len(model.operators), plan.arena_bytes, emitter.weight_bytes,
    )
    return GeneratedRuntime(tuple(files), plan.arena_bytes, emitter.weight_bytes, tuple(model.op_names()))


def _model_header(model: TfliteModel, x: Tensor, y: Tensor, arena_bytes: int) -> str:
    return f"""/*
 * Generated by `harness export` from {Path(model.source).name} (SHA-256 {model.sha256}).
 * Do not edit: regenerate from the .tflite model instead.
 *
 * model_invoke runs one inference. `input` holds MODEL_INPUT_BYTES int8
 * values in the layout of the .tflite input tensor {list(x.shape)}, `output`
 * receives MODEL_OUTPUT_BYTES int8 values of the output tensor {list(y.shape)}.
 * The two buffers must not overlap. The function uses a static arena of
 * MODEL_ARENA_BYTES bytes, so it is not reentrant. It returns 0.
 */
#ifndef MODEL_H
#define MODEL_H

#include <stdint.h>

#define MODEL_INPUT_BYTES {x.element_count}
#define MODEL_OUTPUT_BYTES {y.element_count}
#define MODEL_ARENA_BYTES {arena_bytes}
#define MODEL_INPUT_SCALE {_c_float(x.scale)}
#define MODEL_INPUT_ZERO_POINT ({x.zero_point})
#define MODEL_OUTPUT_SCALE {_c_float(y.scale)}
#define MODEL_OUTPUT_ZERO_POINT ({y.zero_point})
#define MODEL_HASH "{model.model_hash}"

int model_invoke(const int8_t *input, int8_t *output);

#endif /* MODEL_H */
"""


def _model_source(model: TfliteModel, emitter: _Emitter, arena_bytes: int) -> str:
    body = "\n    ".join(emitter.statements)
    declarations = "\n\n".join(emitter.declarations)
    ops = ", ".join(model.op_names())
    arena = ""
    if arena_bytes > 0:
        arena = f"""/* All intermediate tensors, at offsets fixed by the generator's memory plan. */
static union {{
    int64_t alignment;
    int8_t bytes[{arena_bytes}];
}} g_arena;
"""
    return f"""/*
 * Generated by `harness export` from {Path(model.source).name}; do not edit.
 * Operators: {ops}.
 */
#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "nn_kernels.h"

{arena}
{declarations}

int model_invoke(const int8_t *input, int8_t *output)
{{
    {body}
    return 0;
}}
"""
