"""PyTorch to int8 TFLite with litert-torch 0.10.0 and its PT2E quantizer (no TensorFlow).

Recipe: wrap the network with `litert_torch.to_channel_last_io` so the
`.tflite` takes NHWC input, `torch.export` it, `prepare_pt2e` with the
symmetric per-channel static configuration, run calibration samples,
`convert_pt2e(fold_quantize=False)`, then `litert_torch.convert` with the
quantizer in its `QuantConfig`. The result has int8 input and output.

The stock quantizer of litert-torch 0.10.0 leaves some operators in float.
Measured on a small test network: hardswish, relu6 after a batch norm, the
mean and max pool behind them, softmax, and hardsigmoid (which the converter
lowers to float ADD and MUL). `_Int8Quantizer` annotates those too, so every
operator of the harness's networks comes out int8. `check_fully_int8`
rejects a model that still has a float operator.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from harness.errors import ExportError
from harness.export.tflite_model import TfliteModel, read_tflite

logger = logging.getLogger(__name__)

DEFAULT_CALIBRATION_SAMPLES = 64
MAX_CALIBRATION_SAMPLES = 4096

_aten = torch.ops.aten
# Ops whose int8 output uses the input's scale and zero point.
_SHARED_QUANTIZATION_OPS = {
    _aten.relu.default, _aten.relu_.default, _aten.relu6.default, _aten.hardtanh.default,
    _aten.hardtanh_.default, _aten.max_pool2d.default, _aten.avg_pool2d.default,
    _aten.adaptive_avg_pool2d.default, _aten.mean.dim, _aten.flatten.using_ints, _aten.view.default,
    _aten.reshape.default, _aten.permute.default, _aten.squeeze.dim, _aten.unsqueeze.default,
    _aten.constant_pad_nd.default, _aten.pad.default,
}
# Ops whose int8 output gets its own observer.
_OWN_QUANTIZATION_OPS = {_aten.hardswish.default, _aten.hardswish_.default}
# Ops with the fixed output quantization of TFLite (scale 1/256, zero point -128).
_FIXED_QUANTIZATION_OPS = {_aten.sigmoid.default, _aten.softmax.int, _aten._softmax.default}
_HARD_SIGMOID_OPS = {_aten.hardsigmoid.default, _aten.hardsigmoid_.default}


def _make_quantizer():
    """Build the litert-torch PT2E quantizer, extended to quantize every op the networks use."""
    from litert_torch.quantize import pt2e_quantizer_utils as utils
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation, SharedQuantizationSpec

    def annotated(node: torch.fx.Node) -> bool:
        annotation = node.meta.get("quantization_annotation")
        return annotation is not None and annotation._annotated

    class _Int8Quantizer(PT2EQuantizer):
        def transform_for_annotation(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
            # hardsigmoid(x) = relu6(x + 3) / 6: the converter then emits int8 ADD
            # (fused RELU6) and MUL instead of a float decomposition.
            graph = model.graph
            for node in list(graph.nodes):
                if node.op != "call_function" or node.target not in _HARD_SIGMOID_OPS:
                    continue
                with graph.inserting_before(node):
                    shifted = graph.call_function(_aten.add.Tensor, (node.args[0], 3.0))
                    clamped = graph.call_function(_aten.relu6.default, (shifted,))
                    scaled = graph.call_function(_aten.mul.Tensor, (clamped, 1.0 / 6.0))
                for new in (shifted, clamped, scaled):
                    for key in ("val", "nn_module_stack", "stack_trace", "source_fn_stack"):
                        if key in node.meta:
                            new.meta[key] = node.meta[key]
                node.replace_all_uses_with(scaled)
                graph.erase_node(node)
            graph.lint()
            model.recompile()
            return super().transform_for_annotation(model)

        def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
            self._annotate_for_static_quantization_config(model)
            config = self.global_config
            for node in model.graph.nodes:
                if node.op != "call_function" or annotated(node) or not node.args:
                    continue
                source = node.args[0]
                if not isinstance(source, torch.fx.Node):
                    continue
                source_annotation = source.meta.get("quantization_annotation")
                source_quantized = source_annotation is not None and source_annotation.output_qspec is not None
                if node.target in _SHARED_QUANTIZATION_OPS:
                    input_spec = SharedQuantizationSpec(source) if source_quantized else utils.get_input_act_qspec(config)
                    output_spec = SharedQuantizationSpec((source, node))
                elif node.target in _OWN_QUANTIZATION_OPS:
                    input_spec = utils.get_input_act_qspec(config)
                    output_spec = utils.get_output_act_qspec(config)
                elif node.target in _FIXED_QUANTIZATION_OPS:
                    input_spec = utils.get_input_act_qspec(config)
                    output_spec = utils.get_fixed_qparams_qspec(config)
                else:
                    continue
                node.meta["quantization_annotation"] = QuantizationAnnotation(
                    input_qspec_map={source: input_spec}, output_qspec=output_spec, _annotated=True
                )
            return model

    return _Int8Quantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))


def convert_to_tflite(
    model: nn.Module,
    X_calibration: torch.Tensor,
    out_path: Path,
    calibration_samples: int = DEFAULT_CALIBRATION_SAMPLES,
) -> TfliteModel:
    """Quantize `model` to int8 and write the `.tflite` flatbuffer to `out_path`.

    Args:
        model: float network taking `N x C x H x W` input.
        X_calibration: `n x C x H x W` float samples (training data); the first
            `calibration_samples` are used.
        out_path: where the `.tflite` file goes.
        calibration_samples: number of calibration samples, 1 to
            MAX_CALIBRATION_SAMPLES; each costs one forward pass of the
            observed model.

    Returns:
        The parsed `.tflite` model (NHWC int8 input, int8 output).
    """
    import litert_torch
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    if not 1 <= calibration_samples <= MAX_CALIBRATION_SAMPLES:
        raise ExportError(
            f"calibration_samples must be in [1, {MAX_CALIBRATION_SAMPLES}], got {calibration_samples}"
        )
    if X_calibration.ndim != 4 or X_calibration.shape[0] == 0:
        raise ExportError(
            f"calibration data must be a non-empty N x C x H x W tensor, got shape {tuple(X_calibration.shape)}"
        )
    started = time.perf_counter()
    model = model.eval()
    X_nhwc = X_calibration[:calibration_samples].permute(0, 2, 3, 1).contiguous().float()  # n x H x W x C
    example = (X_nhwc[:1],)
    try:
        wrapped = litert_torch.to_channel_last_io(model, args=[0]).eval()
        exported = torch.export.export(wrapped, example).module()
        quantizer = _make_quantizer()
        prepared = prepare_pt2e(exported, quantizer)
        with torch.no_grad():
            for i in range(X_nhwc.shape[0]):
                prepared(X_nhwc[i : i + 1])
        quantized = convert_pt2e(prepared, fold_quantize=False)
        edge_model = litert_torch.convert(quantized, example, quant_config=QuantConfig(pt2e_quantizer=quantizer))
        out_path.parent.mkdir(parents=True, exist_ok=True)
        edge_model.export(str(out_path))
    except ExportError:
        raise
    except Exception as err:  # noqa: BLE001 - the converter raises many unrelated types
        raise ExportError(f"litert-torch conversion failed: {type(err).__name__}: {err}") from err
    tflite = read_tflite(out_path)
    check_fully_int8(tflite)
    logger.info(
        "converted to %s in %.1f s (%d calibration samples, %d operators)",
        out_path, time.perf_counter() - started, X_nhwc.shape[0], len(tflite.operators),
    )
    return tflite


def check_fully_int8(tflite: TfliteModel) -> None:
    """Raise ExportError when the converted model still has float operators or float input/output."""
    float_ops = sorted(
        {
            f"{op.name}#{op.index}"
            for op in tflite.operators
            if any(t >= 0 and tflite.tensors[t].type_name == "FLOAT32" for t in op.inputs + op.outputs)
        }
    )
    if float_ops:
        raise ExportError(
            f"the converted model {tflite.source} is not fully int8: float operators {', '.join(float_ops[:10])}; "
            "replace the PyTorch layers behind them with ones the int8 quantizer covers"
        )


def convert_in_tempdir(model: nn.Module, X_calibration: torch.Tensor, calibration_samples: int) -> bytes:
    """Convert and return the `.tflite` bytes without keeping a file."""
    with tempfile.TemporaryDirectory(prefix="harness-convert-") as tmp:
        path = Path(tmp) / "model.tflite"
        convert_to_tflite(model, X_calibration, path, calibration_samples)
        return path.read_bytes()
