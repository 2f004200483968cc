"""A down-scaled MobileNetV3 for 1-D sensor windows (`N x C x 1 x L` inputs).

The block layout follows MobileNetV3-Small (Howard et al., "Searching for
MobileNetV3", 2019) with fewer, narrower blocks: inverted residual blocks of
expansion, depthwise `(1, k)` convolution, optional squeeze-and-excitation and
linear projection, with hard-swish in the later blocks. The gate of the
squeeze-and-excitation is a sigmoid rather than a hard sigmoid, which converts
to a single int8 LOGISTIC operator.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from harness.compress.groups import ChannelMask, Prunable, PruneGroup
from harness.models.dscnn_se import SqueezeExcitation

STEM_WIDTH = 16
HEAD_WIDTH = 256


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    kernel: int
    expanded: int
    out: int
    se: bool
    hardswish: bool
    stride: int


BLOCKS = (
    BlockSpec(3, 32, 16, True, False, 2),
    BlockSpec(3, 72, 24, False, False, 2),
    BlockSpec(3, 88, 24, False, False, 1),
    BlockSpec(5, 96, 40, True, True, 2),
    BlockSpec(5, 160, 40, True, True, 1),
    BlockSpec(5, 120, 48, True, True, 1),
)


def _activation(hardswish: bool) -> nn.Module:
    return nn.Hardswish() if hardswish else nn.ReLU()


class InvertedResidual(nn.Module):
    """Expansion 1x1, depthwise (1, k), optional SE, projection 1x1, residual when shapes match."""

    def __init__(self, in_channels: int, spec: BlockSpec) -> None:
        super().__init__()
        self.residual = spec.stride == 1 and in_channels == spec.out
        self.expand = nn.Conv2d(in_channels, spec.expanded, 1, bias=False)
        self.expand_norm = nn.BatchNorm2d(spec.expanded)
        self.expand_mask = ChannelMask(spec.expanded)
        self.depthwise = nn.Conv2d(
            spec.expanded, spec.expanded, (1, spec.kernel), stride=(1, spec.stride),
            padding=(0, spec.kernel // 2), groups=spec.expanded, bias=False,
        )
        self.depthwise_norm = nn.BatchNorm2d(spec.expanded)
        self.depthwise_mask = ChannelMask(spec.expanded)
        self.activation = _activation(spec.hardswish)
        self.se = SqueezeExcitation(spec.expanded, max(1, spec.expanded // 4)) if spec.se else None
        self.project = nn.Conv2d(spec.expanded, spec.out, 1, bias=False)
        self.project_norm = nn.BatchNorm2d(spec.out)
        self.project_mask = ChannelMask(spec.out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.activation(self.expand_mask(self.expand_norm(self.expand(x))))
        y = self.activation(self.depthwise_mask(self.depthwise_norm(self.depthwise(y))))
        if self.se is not None:
            y = self.se(y)
        y = self.project_mask(self.project_norm(self.project(y)))
        return x + y if self.residual else y


class MobileNetV3_1D(Prunable):
    """Down-scaled MobileNetV3 for `N x C x 1 x L` inputs."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.stem = nn.Conv2d(in_channels, STEM_WIDTH, (1, 3), stride=(1, 2), padding=(0, 1), bias=False)
        self.stem_norm = nn.BatchNorm2d(STEM_WIDTH)
        self.stem_mask = ChannelMask(STEM_WIDTH)
        blocks = []
        channels = STEM_WIDTH
        for spec in BLOCKS:
            blocks.append(InvertedResidual(channels, spec))
            channels = spec.out
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv2d(channels, HEAD_WIDTH, 1, bias=False)
        self.head_norm = nn.BatchNorm2d(HEAD_WIDTH)
        self.head_mask = ChannelMask(HEAD_WIDTH)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(HEAD_WIDTH, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.hardswish(self.stem_mask(self.stem_norm(self.stem(x))))
        for block in self.blocks:
            x = block(x)
        x = nn.functional.hardswish(self.head_mask(self.head_norm(self.head(x))))
        return self.classifier(torch.flatten(self.pool(x), 1))

    def pruning_groups(self) -> list[PruneGroup]:
        groups = []
        # Residual streams: a block's projection and the projections of the
        # residual blocks that follow it write the same channels.
        stream_producers: list[list[InvertedResidual | None]] = [[None]]
        for block in self.blocks:
            if block.residual:
                stream_producers[-1].append(block)
            else:
                stream_producers.append([block])
        stream_index = 0
        for members in stream_producers:
            producers: list[nn.Conv2d | nn.Linear] = []
            norms, masks = [], []
            for block in members:
                if block is None:
                    producers.append(self.stem)
                    norms.append(self.stem_norm)
                    masks.append(self.stem_mask)
                else:
                    producers.append(block.project)
                    norms.append(block.project_norm)
                    masks.append(block.project_mask)
            last = members[-1]
            after = 0 if last is None else list(self.blocks).index(last) + 1
            readers = [b for b in self.blocks if b.residual and b in members]
            consumers: list[nn.Conv2d | nn.Linear] = [b.expand for b in readers]
            consumers.append(self.blocks[after].expand if after < len(self.blocks) else self.head)
            name = "stem" if members[0] is None else f"stream{stream_index}"
            stream_index += members[0] is not None
            groups.append(PruneGroup(name, producers, consumers, masks, norms))
        for index, block in enumerate(self.blocks, start=1):
            followers = [block.depthwise]
            consumers = [block.project]
            if block.se is not None:
                followers.append(block.se.fc2)
                consumers.append(block.se.fc1)
            groups.append(
                PruneGroup(
                    f"expand{index}",
                    [block.expand],
                    consumers,
                    [block.expand_mask, block.depthwise_mask],
                    [block.expand_norm, block.depthwise_norm],
                    followers,
                )
            )
        groups.append(PruneGroup("head", [self.head], [self.classifier], [self.head_mask], [self.head_norm]))
        return groups
