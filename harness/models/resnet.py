"""A reduced ResNet-18 for small images: three residual stages instead of four.

Each stage has two basic blocks of two 3x3 convolutions with batch norm. The
first block of stages 2 and 3 halves the resolution and has a 1x1 projection
shortcut (He et al., "Deep residual learning for image recognition", 2016).
"""

from __future__ import annotations

import torch
from torch import nn

from harness.compress.groups import ChannelMask, Prunable, PruneGroup

STAGE_WIDTHS = (32, 64, 128)
BLOCKS_PER_STAGE = 2


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus shortcut, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.norm1 = nn.BatchNorm2d(out_channels)
        self.mask1 = ChannelMask(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(out_channels)
        self.mask2 = ChannelMask(out_channels)
        self.shortcut: nn.Conv2d | None = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
            self.shortcut_norm = nn.BatchNorm2d(out_channels)
            self.shortcut_mask = ChannelMask(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.mask1(self.norm1(self.conv1(x))))
        y = self.mask2(self.norm2(self.conv2(y)))
        if self.shortcut is not None:
            x = self.shortcut_mask(self.shortcut_norm(self.shortcut(x)))
        return torch.relu(x + y)


class ResNetSmall(Prunable):
    """Three-stage ResNet for `N x C x H x W` images."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        width = STAGE_WIDTHS[0]
        self.stem = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.stem_norm = nn.BatchNorm2d(width)
        self.stem_mask = ChannelMask(width)
        stages = []
        channels = width
        for stage_index, stage_width in enumerate(STAGE_WIDTHS):
            blocks = []
            for block_index in range(BLOCKS_PER_STAGE):
                stride = 2 if stage_index > 0 and block_index == 0 else 1
                blocks.append(BasicBlock(channels, stage_width, stride))
                channels = stage_width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem_mask(self.stem_norm(self.stem(x))))
        for stage in self.stages:
            x = stage(x)
        return self.classifier(torch.flatten(self.pool(x), 1))

    def pruning_groups(self) -> list[PruneGroup]:
        groups = []
        blocks: list[BasicBlock] = [b for stage in self.stages for b in stage]
        # One residual stream per stage: the stem (stage 1) or the projection
        # shortcut (stages 2, 3) and every block's conv2 write it.
        for stage_index, stage in enumerate(self.stages):
            stage_blocks: list[BasicBlock] = list(stage)
            first = stage_blocks[0]
            if first.shortcut is None:
                producers = [self.stem]
                norms = [self.stem_norm]
                masks = [self.stem_mask]
            else:
                producers = [first.shortcut]
                norms = [first.shortcut_norm]
                masks = [first.shortcut_mask]
            for block in stage_blocks:
                producers.append(block.conv2)
                norms.append(block.norm2)
                masks.append(block.mask2)
            consumers: list[nn.Conv2d | nn.Linear] = [b.conv1 for b in stage_blocks[1:]]
            if stage_index + 1 < len(self.stages):
                following = self.stages[stage_index + 1][0]
                consumers += [following.conv1, following.shortcut]
            else:
                consumers.append(self.classifier)
            if first.shortcut is None:
                consumers.append(first.conv1)
            groups.append(PruneGroup(f"stage{stage_index + 1}", producers, consumers, masks, norms))
        for index, block in enumerate(blocks, start=1):
            groups.append(
                PruneGroup(f"block{index}", [block.conv1], [block.conv2], [block.mask1], [block.norm1])
            )
        return groups
