"""Quantization parameters computed at generation time, as TFLite Micro's Prepare step does.

Every function reproduces the arithmetic of the TFLite reference kernels
(tensorflow/lite/kernels/internal/quantization_util.cc and the Prepare
functions of the micro kernels). That includes which values are computed in
float32 and which in float64, because a multiplier that differs in its last
bit changes the int8 outputs.
"""

from __future__ import annotations

import math

import numpy as np

from harness.errors import UnsupportedModelError

INT8_MIN = -128
INT8_MAX = 127

# ActivationFunctionType values of the TFLite schema.
ACTIVATION_NONE = 0
ACTIVATION_RELU = 1
ACTIVATION_RELU_N1_TO_1 = 2
ACTIVATION_RELU6 = 3


def round_half_away(x: float) -> int:
    """Round to nearest with ties away from zero, like C's `round`."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """Split a positive real multiplier into a Q0.31 significand and a power-of-two exponent.

    Returns (multiplier, shift) with real_multiplier ~= multiplier * 2^(shift - 31).
    """
    if real_multiplier == 0.0:
        return 0, 0
    significand, shift = math.frexp(real_multiplier)
    fixed = round_half_away(significand * (1 << 31))
    if fixed == 1 << 31:
        fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return fixed, shift


def downscale_multiplier_to_int16(multiplier: int) -> int:
    """Round a Q0.31 multiplier to Q0.15."""
    rounding_offset = 1 << 15
    if multiplier >= (1 << 31) - 1 - rounding_offset:
        return (1 << 15) - 1
    return (multiplier + rounding_offset) >> 16


def activation_range(activation: int, scale: float, zero_point: int, where: str) -> tuple[int, int]:
    """Return the int8 clamp range of a fused activation on an output with this scale and zero point."""

    def quantize(value: float) -> int:
        # float32 division, as in CalculateActivationRangeQuantized.
        return zero_point + round_half_away(float(np.float32(value) / np.float32(scale)))

    if activation == ACTIVATION_NONE:
        return INT8_MIN, INT8_MAX
    if activation == ACTIVATION_RELU:
        return max(INT8_MIN, quantize(0.0)), INT8_MAX
    if activation == ACTIVATION_RELU6:
        return max(INT8_MIN, quantize(0.0)), min(INT8_MAX, quantize(6.0))
    if activation == ACTIVATION_RELU_N1_TO_1:
        return max(INT8_MIN, quantize(-1.0)), min(INT8_MAX, quantize(1.0))
    raise UnsupportedModelError(
        f"{where}: fused activation {activation} is not supported for int8 "
        "(supported: NONE, RELU, RELU6, RELU_N1_TO_1)"
    )


def leading_padding(in_size: int, filter_size: int, stride: int, dilation: int, padding_same: bool) -> int:
    """Return the leading padding of one spatial dimension (TFLite SAME or VALID padding)."""
    effective = (filter_size - 1) * dilation + 1
    if padding_same:
        out_size = (in_size + stride - 1) // stride
    else:
        out_size = (in_size + stride - effective) // stride
    total = (out_size - 1) * stride + effective - in_size
    return max(total, 0) // 2


def calculate_input_radius(integer_bits: int, left_shift: int, total_signed_bits: int = 31) -> int:
    """Return the largest input difference whose rescaled value stays in range."""
    max_rescaled = (
        1.0 * ((1 << integer_bits) - 1) * (1 << (total_signed_bits - integer_bits)) / (1 << left_shift)
    )
    return int(math.floor(max_rescaled))


def conv_multipliers(input_scale: float, filter_scales: tuple[float, ...], output_scale: float, channels: int) -> tuple[list[int], list[int]]:
    """Per-channel (multiplier, shift) lists of CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED."""
    multipliers, shifts = [], []
    for channel in range(channels):
        filter_scale = filter_scales[channel] if len(filter_scales) > 1 else filter_scales[0]
        real = float(input_scale) * float(filter_scale) / float(output_scale)
        multiplier, shift = quantize_multiplier(real)
        multipliers.append(multiplier)
        shifts.append(shift)
    return multipliers, shifts
