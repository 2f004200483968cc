"""Analytic FLOP counts of convolutions and linear layers.

One multiply-accumulate counts as 2 FLOPs. Only convolutions and linear
layers are counted, plus their bias additions. Batch norms fold into the
preceding convolution on export. Activations, pooling and element-wise gates
are left out. The output sizes come
from one forward pass with forward hooks; the counts themselves are formulas,
not measurements.
"""

from __future__ import annotations

import torch
from torch import nn


def conv2d_flops(conv: nn.Conv2d, output_shape: torch.Size) -> int:
    """Return the FLOPs of one `Conv2d` call producing a `N x C_out x H x W` output, per sample."""
    _, out_channels, height, width = output_shape
    kernel_height, kernel_width = conv.kernel_size
    macs_per_output = (conv.in_channels // conv.groups) * kernel_height * kernel_width
    flops = 2 * macs_per_output * out_channels * height * width
    if conv.bias is not None:
        flops += out_channels * height * width
    return flops


def linear_flops(linear: nn.Linear) -> int:
    """Return the FLOPs of one `Linear` call on a single input vector."""
    flops = 2 * linear.in_features * linear.out_features
    if linear.bias is not None:
        flops += linear.out_features
    return flops


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Return the FLOPs of one inference of `model` on one input of shape `input_shape` (C x H x W)."""
    total = 0

    def hook(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            total += conv2d_flops(module, output.shape)
        elif isinstance(module, nn.Linear):
            total += linear_flops(module) * (output.numel() // output.shape[-1] // output.shape[0])

    handles = [
        m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total
