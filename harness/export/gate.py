"""The numeric gate: the int8 `.tflite` model must agree with the float PyTorch model.

A conversion can go wrong without any error (a layout mix-up, a dropped
operator, a bad scale). Every export therefore runs the int8 model in the
TFLite reference interpreter (`ai-edge-litert`) on held-out inputs and
compares it with the float network: top-1 agreement and the mean cosine
similarity of the logits. Below either threshold the export fails.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import torch
from torch import nn

from harness.errors import ConfigError, ExportError
from harness.export.tflite_model import TfliteModel

logger = logging.getLogger(__name__)

DEFAULT_MIN_TOP1_AGREEMENT = 0.9
DEFAULT_MIN_LOGIT_COSINE = 0.95
DEFAULT_GATE_SAMPLES = 128


@dataclasses.dataclass(frozen=True)
class GateResult:
    """Agreement of the int8 model with the float model on `samples` held-out inputs."""

    top1_agreement: float
    logit_cosine: float
    samples: int
    source: str = "ai-edge-litert interpreter vs float PyTorch on held-out samples"


def quantize_inputs(X_nchw: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Quantize `n x C x H x W` float inputs to the `.tflite` layout `n x H x W x C` int8."""
    X_nhwc = np.transpose(np.asarray(X_nchw, dtype=np.float32), (0, 2, 3, 1))
    q = np.round(X_nhwc / np.float32(scale)) + zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def run_litert(model_bytes: bytes, X_int8: np.ndarray) -> np.ndarray:
    """Run `n x ...` int8 inputs through the ai-edge-litert interpreter; return `n x outputs` int8."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_bytes, num_threads=1)
    interpreter.allocate_tensors()
    input_detail = interpreter.get_input_details()[0]
    output_detail = interpreter.get_output_details()[0]
    shape = tuple(int(d) for d in input_detail["shape"])
    outputs = []
    for sample in X_int8:
        interpreter.set_tensor(input_detail["index"], sample.reshape(shape).astype(input_detail["dtype"]))
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(output_detail["index"]).ravel().copy())
    return np.stack(outputs)


def _cosine(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two `n x m` arrays; 1 where both rows are zero."""
    dot = np.sum(A * B, axis=1)
    norms = np.linalg.norm(A, axis=1) * np.linalg.norm(B, axis=1)
    both_zero = (np.linalg.norm(A, axis=1) == 0) & (np.linalg.norm(B, axis=1) == 0)
    cosine = np.where(norms > 0, dot / np.where(norms > 0, norms, 1.0), 0.0)
    return np.where(both_zero, 1.0, cosine)


def check_thresholds(min_top1_agreement: float, min_logit_cosine: float) -> None:
    """Raise ConfigError unless min_top1_agreement is in [0, 1] and min_logit_cosine in [-1, 1]."""
    if not 0.0 <= min_top1_agreement <= 1.0:
        raise ConfigError(f"min_top1_agreement must be in [0, 1], got {min_top1_agreement}")
    if not -1.0 <= min_logit_cosine <= 1.0:
        raise ConfigError(f"min_logit_cosine must be in [-1, 1], got {min_logit_cosine}")


def numeric_gate(
    model: nn.Module,
    tflite: TfliteModel,
    model_bytes: bytes,
    X_heldout: torch.Tensor,
    min_top1_agreement: float = DEFAULT_MIN_TOP1_AGREEMENT,
    min_logit_cosine: float = DEFAULT_MIN_LOGIT_COSINE,
) -> GateResult:
    """Compare the int8 model with the float model on `X_heldout` (`n x C x H x W`).

    Raises:
        ExportError: top-1 agreement or logit cosine below its threshold; the
            message gives both figures.
    """
    check_thresholds(min_top1_agreement, min_logit_cosine)
    if X_heldout.shape[0] == 0:
        raise ExportError("the numeric gate needs at least one held-out sample, got none")
    x = tflite.tensors[tflite.inputs[0]]
    y = tflite.tensors[tflite.outputs[0]]
    with torch.no_grad():
        Y_float = model.eval()(X_heldout.float()).reshape(X_heldout.shape[0], -1).numpy()  # n x m
    X_int8 = quantize_inputs(X_heldout.numpy(), x.scale, x.zero_point)
    Y_int8 = run_litert(model_bytes, X_int8)  # n x m
    Y_dequantized = (Y_int8.astype(np.float32) - y.zero_point) * np.float32(y.scale)
    if Y_dequantized.shape != Y_float.shape:
        raise ExportError(
            f"int8 model output shape {Y_dequantized.shape} differs from the float model's {Y_float.shape}"
        )
    top1_agreement = float(np.mean(np.argmax(Y_dequantized, axis=1) == np.argmax(Y_float, axis=1)))
    logit_cosine = float(np.mean(_cosine(Y_dequantized.astype(np.float64), Y_float.astype(np.float64))))
    result = GateResult(top1_agreement, logit_cosine, int(X_heldout.shape[0]))
    logger.info(
        "numeric gate: top-1 agreement %.4f (min %.2f), logit cosine %.4f (min %.2f) on %d samples",
        top1_agreement, min_top1_agreement, logit_cosine, min_logit_cosine, result.samples,
    )
    if top1_agreement < min_top1_agreement or logit_cosine < min_logit_cosine:
        raise ExportError(
            f"numeric gate failed: the int8 model agrees with the float model on top-1 for "
            f"{top1_agreement:.4f} of {result.samples} held-out samples (minimum {min_top1_agreement}) "
            f"and has logit cosine {logit_cosine:.4f} (minimum {min_logit_cosine}); "
            "the conversion is wrong or the quantization loses too much accuracy"
        )
    return result
