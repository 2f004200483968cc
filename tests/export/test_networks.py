"""Whole networks through litert-torch and the C generator, bit-exact with TFLite Micro.

All three networks of `harness.models`, unpruned and physically pruned,
with small inputs so each conversion takes seconds. Converted models are
cached for the session because every conversion costs 5-25 s.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from ai_edge_litert import schema_py_generated as schema
from torch import nn

from export_helpers import assert_bit_exact, compare_with_tflm, needs_gcc
from harness.compress.pruning import apply_masks
from harness.errors import ExportError
from harness.export.convert import check_fully_int8, convert_to_tflite
from harness.export.gate import numeric_gate, quantize_inputs
from harness.export.tflite_model import read_tflite
from harness.models import build_network
from harness.train import finalize

pytestmark = needs_gcc

INPUT_SHAPES = {"dscnn_se": (6, 1, 32), "mobilenetv3_1d": (6, 1, 32), "resnet_small": (1, 12, 12)}
NUM_CLASSES = 5
SAMPLES = 100
PRUNE_SPARSITY = 0.6

_converted: dict[tuple[str, bool], tuple[nn.Module, Path]] = {}


def _network(name: str, pruned: bool) -> nn.Module:
    """Build a network whose outputs depend on its input.

    With PyTorch's default initialization the activations of these deep
    networks shrink layer after layer, so the logits are nearly constant and
    a broken conversion could go unnoticed. Batch-norm statistics estimated
    on random data keep every layer at unit scale.
    """
    torch.manual_seed(0)
    model = build_network(name, INPUT_SHAPES[name], NUM_CLASSES)
    if pruned:
        groups = model.pruning_groups()
        apply_masks(groups, {group.name: PRUNE_SPARSITY for group in groups})
        finalize(model)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.randn(64, *INPUT_SHAPES[name], generator=torch.Generator().manual_seed(4)))
    return model.eval()


def converted(name: str, pruned: bool, cache: Path) -> tuple[nn.Module, Path]:
    """Return the float network and the path of its converted `.tflite`, converting once per session."""
    key = (name, pruned)
    if key not in _converted:
        torch.set_num_threads(1)
        model = _network(name, pruned)
        X = torch.randn(32, *INPUT_SHAPES[name], generator=torch.Generator().manual_seed(1))
        path = cache / f"{name}{'_pruned' if pruned else ''}.tflite"
        convert_to_tflite(model, X, path, calibration_samples=32)
        _converted[key] = (model, path)
    return _converted[key]


def _test_inputs(name: str, model_path: Path) -> np.ndarray:
    """Quantized standard-normal samples in the model's NHWC layout, `SAMPLES x H x W x C`."""
    tflite = read_tflite(model_path)
    x = tflite.tensors[tflite.inputs[0]]
    X = torch.randn(SAMPLES, *INPUT_SHAPES[name], generator=torch.Generator().manual_seed(2))
    return quantize_inputs(X.numpy(), x.scale, x.zero_point)


# The unpruned networks are the slowest conversions (10-25 s each), so they run with -m slow.
NETWORK_CASES = [
    pytest.param("dscnn_se", False, marks=pytest.mark.slow),
    ("dscnn_se", True),
    pytest.param("mobilenetv3_1d", False, marks=pytest.mark.slow),
    ("mobilenetv3_1d", True),
    pytest.param("resnet_small", False, marks=pytest.mark.slow),
    ("resnet_small", True),
]


@pytest.mark.parametrize("name,pruned", NETWORK_CASES)
def test_network_bit_exact(name: str, pruned: bool, export_cache: Path, tmp_path: Path) -> None:
    _, model_path = converted(name, pruned, export_cache)
    inputs = _test_inputs(name, model_path)
    reference, generated = compare_with_tflm(model_path.read_bytes(), tmp_path, inputs=inputs)
    assert reference.shape == (SAMPLES, NUM_CLASSES)
    assert len(np.unique(reference.argmax(axis=1))) > 1, "the network ignores its input"
    assert_bit_exact(reference, generated)


@pytest.mark.parametrize("name,pruned", [("mobilenetv3_1d", True), ("resnet_small", True)])
def test_network_passes_gate(name: str, pruned: bool, export_cache: Path) -> None:
    model, model_path = converted(name, pruned, export_cache)
    X = torch.randn(64, *INPUT_SHAPES[name], generator=torch.Generator().manual_seed(3))
    result = numeric_gate(model, read_tflite(model_path), model_path.read_bytes(), X)
    assert result.top1_agreement >= 0.9
    assert result.logit_cosine >= 0.95
    assert result.samples == 64


def _reverse_weights(model_bytes: bytes, op_name: str) -> bytes:
    """Return the model with the weights of the last `op_name` operator reversed (a broken conversion)."""
    import flatbuffers

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(model_bytes, 0))
    graph = model.subgraphs[0]
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    target = getattr(schema.BuiltinOperator, op_name)
    op = [o for o in graph.operators if codes[o.opcodeIndex] == target][-1]
    buffer = model.buffers[graph.tensors[op.inputs[1]].buffer]
    buffer.data = np.ascontiguousarray(np.asarray(buffer.data)[::-1])
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_gate_rejects_altered_weights(export_cache: Path) -> None:
    model, model_path = converted("mobilenetv3_1d", True, export_cache)
    broken = _reverse_weights(model_path.read_bytes(), "FULLY_CONNECTED")
    X = torch.randn(64, *INPUT_SHAPES["mobilenetv3_1d"], generator=torch.Generator().manual_seed(3))
    with pytest.raises(ExportError, match="numeric gate failed") as info:
        numeric_gate(model, read_tflite(broken), broken, X)
    message = str(info.value)
    assert "top-1" in message
    assert "logit cosine" in message
    assert "minimum 0.9" in message


class _HeadNet(nn.Module):
    """Conv stem, average-pool head and softmax output, as TFLite converter models often have."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.classifier = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv(x)))
        x = nn.functional.avg_pool2d(x, kernel_size=2)
        x = nn.functional.avg_pool2d(x, kernel_size=x.shape[2:])
        return torch.softmax(self.classifier(torch.flatten(x, 1)), dim=1)


def test_softmax_avgpool_head_bit_exact(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _HeadNet().eval()
    path = tmp_path / "head.tflite"
    tflite = convert_to_tflite(model, torch.randn(16, 3, 8, 8), path, calibration_samples=16)
    assert "SOFTMAX" in tflite.op_names()
    assert "AVERAGE_POOL_2D" in tflite.op_names()
    assert_bit_exact(*compare_with_tflm(path.read_bytes(), tmp_path / "c", samples=50))


class _HardSigmoidGate(nn.Module):
    """Squeeze-and-excitation with a hard sigmoid, which the converter would otherwise leave in float."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 8, (1, 3), padding=(0, 1))
        self.squeeze = nn.Conv2d(8, 8, 1)
        self.classifier = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.hardswish(self.conv(x))
        x = x * nn.functional.hardsigmoid(self.squeeze(x.mean((2, 3), keepdim=True)))
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def test_hardsigmoid_converts_to_int8(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _HardSigmoidGate().eval()
    X = torch.randn(48, 4, 1, 20, generator=torch.Generator().manual_seed(5))
    path = tmp_path / "hardsigmoid.tflite"
    tflite = convert_to_tflite(model, X[:16], path, calibration_samples=16)
    result = numeric_gate(model, tflite, path.read_bytes(), X[16:])
    assert "HARD_SWISH" in tflite.op_names()
    assert result.logit_cosine >= 0.95
    assert_bit_exact(*compare_with_tflm(path.read_bytes(), tmp_path / "c", samples=50))



def test_float_operator_fails_conversion_check() -> None:
    from tflite_builder import ModelBuilder

    builder = ModelBuilder()
    x = builder.tensor((1, 4), scale=0.1, zero_point=0)
    y = builder.tensor((1, 4), "FLOAT32")
    builder.op("DEQUANTIZE", [x], [y])
    model = read_tflite(builder.build([x], [y]), source="dequantize.tflite")
    with pytest.raises(ExportError, match="not fully int8") as info:
        check_fully_int8(model)
    assert "DEQUANTIZE#0" in str(info.value)
