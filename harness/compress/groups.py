"""Channel groups: the unit of filter pruning.

A pruning group is a set of feature-map channels that must be kept or removed
together. Convolutions whose outputs are added by a residual connection write
the same channels, so they form one group. A depthwise convolution, its batch
norm and a squeeze-and-excitation gate act on each channel of the group
without mixing channels. The next layers read the group as input channels.

Each network describes its groups with `PruneGroup` records that point at its
own submodules. `ChannelMask` modules, placed after every batch norm (or bias)
that writes group channels, zero the pruned channels during training, so the
masked network computes exactly what the physically smaller network computes
once the channels are removed (see `harness.compress.pruning`).

No pruning library is used, because the available ones (torch.nn.utils.prune,
torch-pruning) either keep the tensors at full size or trace the graph at run
time. The networks here are few and fixed, and an explicit group list is easy
to check against the physically pruned result.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn


class ChannelMask(nn.Module):
    """Multiply a `N x C x H x W` tensor by a 0/1 mask over its C channels.

    After physical pruning the mask is dropped (`mask is None`) and the module
    is the identity, so it leaves no operator in an exported graph.
    """

    mask: torch.Tensor | None

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("mask", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mask is None:
            return x
        return x * self.mask.view(1, -1, *([1] * (x.dim() - 2)))


@dataclasses.dataclass
class PruneGroup:
    """The modules that write, transform or read one group of channels.

    Attributes:
        name: the layer name used in the search space (`sparsity.<name>`).
        producers: convolutions (dense, `groups == 1`) or linear layers whose
            output channels are the group; their filters' L1 norms rank channels.
        norms: batch norms over the group's channels (producers' and followers').
        followers: channel-wise layers: depthwise convolutions (in = out =
            groups = group size) and layers whose outputs gate the group, such
            as a squeeze-and-excitation expansion convolution.
        consumers: convolutions or linear layers that read the group as input channels.
        masks: the masks that zero pruned channels during training.
    """

    name: str
    producers: list[nn.Conv2d | nn.Linear]
    consumers: list[nn.Conv2d | nn.Linear]
    masks: list[ChannelMask]
    norms: list[nn.BatchNorm2d] = dataclasses.field(default_factory=list)
    followers: list[nn.Conv2d] = dataclasses.field(default_factory=list)

    @property
    def channels(self) -> int:
        """Current number of channels (kept and masked)."""
        first = self.producers[0]
        return first.out_channels if isinstance(first, nn.Conv2d) else first.out_features

    def current_mask(self) -> torch.Tensor:
        """Return the group's 0/1 mask, shape `C` (all ones when no mask is active)."""
        mask = self.masks[0].mask
        return torch.ones(self.channels) if mask is None else mask.clone()

    def set_mask(self, mask: torch.Tensor) -> None:
        """Write the same 0/1 mask (shape `C`) into every mask module of the group."""
        for module in self.masks:
            if module.mask is None:
                raise RuntimeError(f"group {self.name!r} was already physically pruned")
            module.mask.copy_(mask)


class Prunable(nn.Module):
    """A network that lists its pruning groups."""

    def pruning_groups(self) -> list[PruneGroup]:
        raise NotImplementedError
