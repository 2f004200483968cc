"""Network registry: every network is prunable and lists its pruning groups."""

from __future__ import annotations

from collections.abc import Callable

from harness.compress.groups import Prunable
from harness.errors import ConfigError
from harness.models.dscnn_se import DSCNNSE
from harness.models.mobilenetv3 import MobileNetV3_1D
from harness.models.resnet import ResNetSmall

# name -> (constructor taking (in_channels, num_classes), expects 1-D input, example C x H x W)
_NETWORKS: dict[str, tuple[Callable[[int, int], Prunable], bool, tuple[int, int, int]]] = {
    "dscnn_se": (DSCNNSE, True, (6, 1, 100)),
    "mobilenetv3_1d": (MobileNetV3_1D, True, (6, 1, 100)),
    "resnet_small": (ResNetSmall, False, (1, 28, 28)),
}

NETWORKS = tuple(_NETWORKS)


def _lookup(name: str) -> tuple[Callable[[int, int], Prunable], bool, tuple[int, int, int]]:
    try:
        return _NETWORKS[name]
    except KeyError:
        raise ConfigError(f"unknown network {name!r}; choose one of {', '.join(NETWORKS)}") from None


def build_network(name: str, input_shape: tuple[int, int, int], num_classes: int) -> Prunable:
    """Build network `name` for inputs of shape `C x H x W` and `num_classes` outputs.

    Raises:
        ConfigError: unknown name, or a 1-D network given images (H > 1).
    """
    constructor, one_dimensional, _ = _lookup(name)
    channels, height, _width = input_shape
    if one_dimensional and height != 1:
        raise ConfigError(
            f"network {name!r} takes 1-D series (N x C x 1 x L); this dataset has "
            f"C x H x W = {tuple(input_shape)}; use resnet_small for images"
        )
    if num_classes < 2:
        raise ConfigError(f"num_classes must be at least 2, got {num_classes}")
    return constructor(channels, num_classes)


def prunable_layer_names(name: str) -> list[str]:
    """Return the pruning group names of network `name`, in search-space order."""
    constructor, _, (channels, _, _) = _lookup(name)
    return [group.name for group in constructor(channels, 2).pruning_groups()]
