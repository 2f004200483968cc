"""The UEA network: a depthwise-separable CNN with squeeze-and-excitation.

One regular convolution, ten depthwise-separable convolutions with batch norm
and ReLU, squeeze-and-excitation blocks after separable convolutions 2, 4, 6,
8 and 10, adaptive average pooling and one linear classifier. At full width it
has about 2.6 M parameters. Inputs are `N x C x 1 x L` series; every kernel is
`(1, k)`, which keeps the exported TFLite graph free of layout transposes.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.compress.groups import ChannelMask, Prunable, PruneGroup

# Output channels and time stride of separable convolutions 1..10.
SEPARABLE_WIDTHS = (64, 128, 128, 256, 256, 384, 384, 512, 768, 1024)
SEPARABLE_STRIDES = (1, 2, 1, 2, 1, 2, 1, 2, 1, 1)
STEM_WIDTH = 64
SE_AFTER = (2, 4, 6, 8, 10)
SE_REDUCTION = 4
KERNEL = 5


class SqueezeExcitation(nn.Module):
    """Channel gating: x * sigmoid(fc2(relu(fc1(mean(x))))), on `N x C x H x W`."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.mask = ChannelMask(hidden)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.relu(self.mask(self.fc1(self.pool(x))))
        return x * torch.sigmoid(self.fc2(scale))


class SeparableConv(nn.Module):
    """Depthwise `(1, k)` convolution, then pointwise convolution, each with BN and ReLU.

    `in_mask` masks the depthwise output with the input group's mask, because
    the depthwise batch norm would otherwise turn zeroed channels into constants.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, se: bool) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(
            in_channels, in_channels, (1, KERNEL), stride=(1, stride),
            padding=(0, KERNEL // 2), groups=in_channels, bias=False,
        )
        self.depthwise_norm = nn.BatchNorm2d(in_channels)
        self.in_mask = ChannelMask(in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.pointwise_norm = nn.BatchNorm2d(out_channels)
        self.out_mask = ChannelMask(out_channels)
        self.se = SqueezeExcitation(out_channels, max(1, out_channels // SE_REDUCTION)) if se else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.in_mask(self.depthwise_norm(self.depthwise(x))))
        x = torch.relu(self.out_mask(self.pointwise_norm(self.pointwise(x))))
        if self.se is not None:
            x = self.se(x)
        return x


class DSCNNSE(Prunable):
    """The UEA network for `N x C x 1 x L` inputs."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.stem = nn.Conv2d(in_channels, STEM_WIDTH, (1, KERNEL), padding=(0, KERNEL // 2), bias=False)
        self.stem_norm = nn.BatchNorm2d(STEM_WIDTH)
        self.stem_mask = ChannelMask(STEM_WIDTH)
        blocks = []
        channels = STEM_WIDTH
        for index, (width, stride) in enumerate(zip(SEPARABLE_WIDTHS, SEPARABLE_STRIDES), start=1):
            blocks.append(SeparableConv(channels, width, stride, se=index in SE_AFTER))
            channels = width
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem_mask(self.stem_norm(self.stem(x))))
        for block in self.blocks:
            x = block(x)
        return self.classifier(torch.flatten(self.pool(x), 1))

    def pruning_groups(self) -> list[PruneGroup]:
        groups = []
        # Outputs of the stem, then of each pointwise convolution; each is read
        # by the next depthwise convolution (a follower) and pointwise one.
        producers = [(self.stem, self.stem_norm, self.stem_mask, "conv0")]
        for index, block in enumerate(self.blocks, start=1):
            producers.append((block.pointwise, block.pointwise_norm, block.out_mask, f"conv{index}"))
        for position, (conv, norm, mask, name) in enumerate(producers):
            followers: list[nn.Conv2d] = []
            norms = [norm]
            masks = [mask]
            consumers: list[nn.Conv2d | nn.Linear] = []
            if position > 0 and self.blocks[position - 1].se is not None:
                se = self.blocks[position - 1].se
                followers.append(se.fc2)
                consumers.append(se.fc1)
            if position < len(self.blocks):
                following = self.blocks[position]
                followers.append(following.depthwise)
                norms.append(following.depthwise_norm)
                masks.append(following.in_mask)
                consumers.append(following.pointwise)
            else:
                consumers.append(self.classifier)
            groups.append(PruneGroup(name, [conv], consumers, masks, norms, followers))
        for index, block in enumerate(self.blocks, start=1):
            if block.se is not None:
                se = block.se
                groups.append(PruneGroup(f"se{index}", [se.fc1], [se.fc2], [se.mask]))
        return groups
