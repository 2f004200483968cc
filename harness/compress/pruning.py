"""Automated gradual filter pruning and physical removal of pruned channels.

The schedule is the cubic one of Zhu & Gupta ("To prune, or not to prune",
2017): with final sparsity s_f, pruning steps k = 1..n spread evenly between
the start and end epochs reach s_k = s_f * (1 - (1 - k / n)^3). At each step
the channels of a group with the smallest filter L1 norms, summed over the
group's producers, are masked. Masked channels stay masked, so sparsity only
grows. After training, `remove_pruned_channels` slices every affected tensor
so the network is physically smaller and computes the same outputs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import torch
from torch import nn

from harness.compress.groups import PruneGroup, Prunable
from harness.errors import ConfigError


def agp_sparsity(final_sparsity: float, step: int, steps: int) -> float:
    """Return the target sparsity after pruning step `step` of `steps` (cubic AGP)."""
    if steps < 1 or not 0 <= step <= steps:
        raise ConfigError(f"pruning step {step} is outside 0..{steps}")
    return final_sparsity * (1.0 - (1.0 - step / steps) ** 3)


@dataclasses.dataclass(frozen=True)
class PruningStep:
    """One pruning event: at the start of `epoch`, reach `fraction` of each final sparsity."""

    epoch: int
    step: int
    fraction: float


def pruning_schedule(epochs: int, start: float, end: float, steps: int) -> list[PruningStep]:
    """Spread `steps` pruning events between epochs `start * epochs` and `end * epochs`.

    Step k (1-based) happens at epoch round(t0 + k * (t1 - t0) / steps), so the
    last one is at the end epoch and the first after one interval. Steps that
    fall on the same epoch (few epochs, many steps) collapse into the latest,
    and an end epoch of `epochs` or more is moved to the last epoch, so the
    final sparsity is always reached before training ends.

    Returns:
        The events in epoch order, each with its fraction of the final sparsity.
    """
    if not 0.0 <= start <= end <= 1.0:
        raise ConfigError(
            f"pruning interval: prune_start={start} and prune_end={end} must satisfy "
            "0 <= prune_start <= prune_end <= 1"
        )
    if steps < 1:
        raise ConfigError(f"parameter 'prune_steps': value {steps} is invalid; allowed: integer >= 1")
    first = start * epochs
    last = min(end * epochs, epochs - 1)
    first = min(first, last)
    by_epoch: dict[int, PruningStep] = {}
    for k in range(1, steps + 1):
        epoch = int(round(first + k * (last - first) / steps))
        by_epoch[epoch] = PruningStep(epoch, k, agp_sparsity(1.0, k, steps))
    return [by_epoch[e] for e in sorted(by_epoch)]


def channel_importance(group: PruneGroup) -> torch.Tensor:
    """Return the summed L1 norm of every producer filter of the group, shape `C`."""
    total = torch.zeros(group.channels)
    for producer in group.producers:
        weight = producer.weight.detach()
        total += weight.abs().reshape(weight.shape[0], -1).sum(dim=1)
    return total


def channels_to_keep(channels: int, sparsity: float) -> int:
    """Return how many of `channels` survive `sparsity` (at least one)."""
    return max(1, channels - int(math.floor(sparsity * channels + 1e-9)))


def apply_masks(groups: list[PruneGroup], sparsities: Mapping[str, float]) -> dict[str, int]:
    """Mask the lowest-L1 channels of each group until its target sparsity is reached.

    Args:
        groups: the network's pruning groups.
        sparsities: group name -> target sparsity in [0, 1); missing groups are left alone.

    Returns:
        Group name -> number of channels left unmasked.
    """
    kept: dict[str, int] = {}
    for group in groups:
        mask = group.current_mask()
        if group.name in sparsities:
            target = channels_to_keep(group.channels, float(sparsities[group.name]))
            alive = int(mask.sum().item())
            if target < alive:
                importance = channel_importance(group)
                importance[mask == 0] = float("inf")
                # Ties are broken by channel index so the result is deterministic.
                order = torch.argsort(importance, stable=True)
                mask[order[: alive - target]] = 0.0
                group.set_mask(mask)
        kept[group.name] = int(mask.sum().item())
    return kept


def _slice_parameter(module: nn.Module, name: str, index: torch.Tensor, dim: int) -> None:
    tensor = getattr(module, name)
    if tensor is None:
        return
    sliced = tensor.detach().index_select(dim, index).clone()
    if isinstance(tensor, nn.Parameter):
        setattr(module, name, nn.Parameter(sliced, requires_grad=tensor.requires_grad))
    else:
        setattr(module, name, sliced)


def _prune_outputs(module: nn.Module, index: torch.Tensor) -> None:
    _slice_parameter(module, "weight", index, 0)
    _slice_parameter(module, "bias", index, 0)
    if isinstance(module, nn.Conv2d):
        if module.groups == module.in_channels == module.out_channels and module.groups > 1:
            module.in_channels = module.groups = len(index)
        module.out_channels = len(index)
    elif isinstance(module, nn.Linear):
        module.out_features = len(index)
    else:
        raise TypeError(f"cannot prune outputs of {type(module).__name__}")


def _prune_inputs(module: nn.Module, index: torch.Tensor) -> None:
    if isinstance(module, nn.Conv2d):
        if module.groups != 1:
            raise TypeError("a grouped convolution must be a follower, not a consumer")
        _slice_parameter(module, "weight", index, 1)
        module.in_channels = len(index)
    elif isinstance(module, nn.Linear):
        _slice_parameter(module, "weight", index, 1)
        module.in_features = len(index)
    else:
        raise TypeError(f"cannot prune inputs of {type(module).__name__}")


def _prune_norm(norm: nn.BatchNorm2d, index: torch.Tensor) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        _slice_parameter(norm, name, index, 0)
    norm.num_features = len(index)


def remove_pruned_channels(model: Prunable) -> dict[str, int]:
    """Physically remove every masked channel and drop the masks, in place.

    Returns:
        Group name -> number of channels kept.
    """
    groups = model.pruning_groups()
    kept: dict[str, int] = {}
    for group in groups:
        index = torch.nonzero(group.current_mask(), as_tuple=False).flatten()
        kept[group.name] = len(index)
        if len(index) < group.channels:
            for module in [*group.producers, *group.followers]:
                _prune_outputs(module, index)
            for norm in group.norms:
                _prune_norm(norm, index)
            for module in group.consumers:
                _prune_inputs(module, index)
        for mask in group.masks:
            mask.mask = None
    return kept


def count_parameters(model: nn.Module) -> int:
    """Return the number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
