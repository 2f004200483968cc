import pytest
import torch
from torch import nn

from harness.compress.flops import count_flops
from harness.compress.pruning import (
    agp_sparsity,
    apply_masks,
    channel_importance,
    count_parameters,
    pruning_schedule,
    remove_pruned_channels,
)
from harness.errors import ConfigError
from harness.models import NETWORKS, build_network

SHAPES = {"dscnn_se": (6, 1, 64), "mobilenetv3_1d": (6, 1, 64), "resnet_small": (3, 16, 16)}


def test_agp_matches_cubic_formula():
    final, steps = 0.8, 5
    for k in range(steps + 1):
        assert agp_sparsity(final, k, steps) == pytest.approx(final * (1 - (1 - k / steps) ** 3))
    assert agp_sparsity(final, steps, steps) == pytest.approx(final)
    assert agp_sparsity(final, 0, steps) == 0.0


def test_schedule_spans_start_to_end():
    schedule = pruning_schedule(100, 0.2, 0.8, 4)
    assert [s.epoch for s in schedule] == [35, 50, 65, 80]
    assert [s.fraction for s in schedule] == pytest.approx([1 - 0.75**3, 1 - 0.5**3, 1 - 0.25**3, 1.0])


def test_schedule_reaches_final_within_training():
    schedule = pruning_schedule(3, 0.0, 0.95, 20)
    assert schedule[-1].fraction == 1.0
    assert schedule[-1].epoch <= 2


def test_schedule_rejects_start_after_end():
    with pytest.raises(ConfigError, match="prune_start"):
        pruning_schedule(10, 0.9, 0.5, 3)


def _randomize_norms(model: nn.Module) -> None:
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator))
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
            module.weight.data.copy_(torch.randn(module.num_features, generator=generator))
            module.bias.data.copy_(torch.randn(module.num_features, generator=generator))


@pytest.mark.parametrize("network", NETWORKS)
def test_masked_equals_physically_pruned(network):
    torch.manual_seed(0)
    shape = SHAPES[network]
    model = build_network(network, shape, 5)
    _randomize_norms(model)
    model.eval()
    groups = model.pruning_groups()
    apply_masks(groups, {g.name: 0.3 + 0.4 * (i % 2) for i, g in enumerate(groups)})
    X = torch.randn(4, *shape)
    with torch.no_grad():
        masked = model(X)
        params_before = count_parameters(model)
        kept = remove_pruned_channels(model)
        pruned = model(X)
    assert torch.allclose(masked, pruned, atol=1e-5), (masked - pruned).abs().max()
    assert count_parameters(model) < params_before
    for group in model.pruning_groups():
        assert group.channels == kept[group.name]


def test_masks_only_grow_and_keep_lowest_norm_out():
    torch.manual_seed(0)
    model = build_network("dscnn_se", SHAPES["dscnn_se"], 3)
    group = model.pruning_groups()[0]
    importance = channel_importance(group)
    apply_masks([group], {group.name: 0.25})
    mask = group.current_mask()
    assert int(mask.sum()) == group.channels - group.channels // 4
    assert importance[mask == 0].max() <= importance[mask == 1].min()
    apply_masks([group], {group.name: 0.1})
    assert torch.equal(group.current_mask(), mask)


def test_gradual_steps_reach_each_target():
    model = build_network("dscnn_se", SHAPES["dscnn_se"], 3)
    group = model.pruning_groups()[1]
    for fraction in (0.2, 0.5, 0.8, 0.95):
        kept = apply_masks([group], {group.name: fraction})[group.name]
        assert kept == group.channels - int(fraction * group.channels)
        assert int(group.current_mask().sum()) == kept


def test_at_least_one_channel_survives():
    model = build_network("resnet_small", SHAPES["resnet_small"], 3)
    kept = apply_masks(model.pruning_groups(), {"block1": 0.99999})
    assert kept["block1"] == 1


class _TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, (1, 3), padding=(0, 1))
        self.depthwise = nn.Conv2d(8, 8, (1, 5), stride=(1, 2), padding=(0, 2), groups=8, bias=False)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = self.depthwise(self.conv(x))
        return self.fc(x.mean(dim=(2, 3)))


def test_flops_against_hand_count():
    # conv: 8 x 1 x 20 outputs, 3*3 MACs each, plus 160 bias adds
    # depthwise: 8 x 1 x 10 outputs, 5 MACs each
    # linear: 8*4 MACs plus 4 bias adds
    expected = 2 * 160 * 9 + 160 + 2 * 80 * 5 + 2 * 32 + 4
    assert count_flops(_TwoLayer(), (3, 1, 20)) == expected
