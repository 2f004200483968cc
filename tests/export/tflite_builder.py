"""Build small `.tflite` models in tests with the flatbuffers builder and the TFLite schema.

TensorFlow cannot be installed here, so models of the shape the TensorFlow
Lite converter writes (single operators, SOFTMAX heads, 2-D inputs, opcodes
only in the deprecated int8 field) are assembled directly from the schema's
object API (`ai_edge_litert.schema_py_generated`).
"""

from __future__ import annotations

from collections.abc import Sequence

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

_TYPES = {"INT8": schema.TensorType.INT8, "INT32": schema.TensorType.INT32, "FLOAT32": schema.TensorType.FLOAT32,
          "INT16": schema.TensorType.INT16}


class ModelBuilder:
    """Accumulate tensors and operators of one subgraph, then pack them into `.tflite` bytes."""

    def __init__(self) -> None:
        self.tensors: list[schema.TensorT] = []
        self.buffers: list[schema.BufferT] = [schema.BufferT()]
        self.operators: list[schema.OperatorT] = []
        self.opcodes: list[int] = []

    def tensor(
        self,
        shape: Sequence[int],
        type_name: str = "INT8",
        scale: float | Sequence[float] | None = None,
        zero_point: int | Sequence[int] = 0,
        data: np.ndarray | None = None,
        quantized_dimension: int = 0,
        name: str | None = None,
    ) -> int:
        """Add a tensor (constant when `data` is given) and return its index."""
        tensor = schema.TensorT()
        tensor.shape = list(int(d) for d in shape)
        tensor.type = _TYPES[type_name]
        tensor.name = name or f"t{len(self.tensors)}"
        tensor.buffer = 0
        if data is not None:
            dtype = {"INT8": np.int8, "INT32": np.int32, "FLOAT32": np.float32, "INT16": np.int16}[type_name]
            buffer = schema.BufferT()
            buffer.data = np.ascontiguousarray(data, dtype=dtype).reshape(-1).view(np.uint8)
            self.buffers.append(buffer)
            tensor.buffer = len(self.buffers) - 1
        if scale is not None:
            scales = [float(s) for s in np.atleast_1d(scale)]
            zero_points = [int(z) for z in np.atleast_1d(zero_point)]
            if len(zero_points) == 1 and len(scales) > 1:
                zero_points = zero_points * len(scales)
            quantization = schema.QuantizationParametersT()
            quantization.scale = scales
            quantization.zeroPoint = zero_points
            quantization.quantizedDimension = quantized_dimension
            tensor.quantization = quantization
        self.tensors.append(tensor)
        return len(self.tensors) - 1

    def op(self, name: str, inputs: Sequence[int], outputs: Sequence[int], options: object | None = None) -> None:
        """Add builtin operator `name` (e.g. "CONV_2D") with an optional options object."""
        code = getattr(schema.BuiltinOperator, name)
        if code not in self.opcodes:
            self.opcodes.append(code)
        operator = schema.OperatorT()
        operator.opcodeIndex = self.opcodes.index(code)
        operator.inputs = list(inputs)
        operator.outputs = list(outputs)
        if options is not None:
            operator.builtinOptionsType = getattr(schema.BuiltinOptions, type(options).__name__[:-1])
            operator.builtinOptions = options
        self.operators.append(operator)

    def build(self, inputs: Sequence[int], outputs: Sequence[int], legacy_opcodes: bool = False) -> bytes:
        """Pack the model; `legacy_opcodes` fills only the deprecated int8 opcode field, as old converters did."""
        model = schema.ModelT()
        model.version = 3
        model.description = "harness test model"
        codes = []
        for code in self.opcodes:
            opcode = schema.OperatorCodeT()
            opcode.deprecatedBuiltinCode = min(code, 127)
            opcode.builtinCode = 0 if legacy_opcodes else code
            opcode.version = 1
            codes.append(opcode)
        model.operatorCodes = codes
        graph = schema.SubGraphT()
        graph.tensors = self.tensors
        graph.operators = self.operators
        graph.inputs = list(inputs)
        graph.outputs = list(outputs)
        graph.name = "main"
        model.subgraphs = [graph]
        model.buffers = self.buffers
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())
