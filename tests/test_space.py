import math

import numpy as np
import pytest

from harness.errors import ConfigError
from harness.space import Parameter, SearchSpace, build_space, space_for_network


def test_round_trip_every_kind():
    space = SearchSpace([
        Parameter("lr", 1e-5, 1e-2, log=True),
        Parameter("epochs", 100, 500, integer=True),
        Parameter("prune_start", 0.0, 0.6),
        Parameter("sparsity.conv0", 0.1, 0.99),
    ])
    config = {"lr": 3e-4, "epochs": 250, "prune_start": 0.3, "sparsity.conv0": 0.5}
    decoded = space.decode(space.encode(config))
    assert math.isclose(decoded["lr"], 3e-4, rel_tol=1e-9)
    assert decoded["epochs"] == 250
    assert isinstance(decoded["epochs"], int)
    assert math.isclose(decoded["prune_start"], 0.3)
    assert math.isclose(decoded["sparsity.conv0"], 0.5)


def test_log_scale_midpoint():
    space = SearchSpace([Parameter("lr", 1e-5, 1e-1, log=True)])
    assert math.isclose(space.decode(np.array([0.5]))["lr"], 1e-3, rel_tol=1e-9)


def test_decode_rounds_and_clips():
    space = SearchSpace([Parameter("epochs", 100, 500, integer=True), Parameter("lr_gamma", 0.4, 0.9)])
    assert space.decode(np.array([1.7, -0.3])) == {"epochs": 500, "lr_gamma": 0.4}
    assert space.decode(np.array([0.00124, 0.5]))["epochs"] == 100


def test_encode_stays_in_cube():
    space = space_for_network("dscnn_se")
    u = space.encode(space.default_config())
    assert u.shape == (space.dim,)
    assert np.all((u >= 0) & (u <= 1))


def test_network_space_has_one_sparsity_per_layer():
    space = space_for_network("dscnn_se")
    assert len(space.sparsity_layers) == 16
    assert space.dim == 10 + 16
    assert "sparsity.conv10" in space.names


def test_published_defaults():
    space = space_for_network("resnet_small")
    by_name = {p.name: p for p in space.parameters}
    assert (by_name["epochs"].low, by_name["epochs"].high) == (100, 500)
    assert (by_name["batch_size"].low, by_name["batch_size"].high) == (20, 200)
    assert by_name["lr"].log and (by_name["lr"].low, by_name["lr"].high) == (1e-5, 1e-2)
    assert by_name["momentum"].log
    assert (by_name["prune_end"].low, by_name["prune_end"].high) == (0.8, 0.95)
    published = {p.name: p for p in space_for_network("resnet_small", preset="published").parameters}
    assert (published["weight_decay"].low, published["weight_decay"].high) == (0.6, 0.99)


def test_override_fixes_parameter():
    space = space_for_network("dscnn_se", overrides={"epochs": 20, "lr": [1e-4, 1e-3]})
    assert "epochs" not in space.names
    assert space.dim == 25
    decoded = space.decode(np.zeros(space.dim))
    assert decoded["epochs"] == 20
    assert math.isclose(decoded["lr"], 1e-4)


def test_low_above_high_is_rejected():
    with pytest.raises(ConfigError, match=r"'lr'.*low > high"):
        space_for_network("dscnn_se", overrides={"lr": [1e-2, 1e-4]})


def test_negative_epochs_rejected():
    with pytest.raises(ConfigError, match=r"'epochs'.*-5.*integer in \[1"):
        space_for_network("dscnn_se").complete({"epochs": -5})


def test_unknown_parameter_rejected():
    with pytest.raises(ConfigError, match=r"unknown parameter 'learning_rate'.*known parameters"):
        space_for_network("dscnn_se").complete({"learning_rate": 0.1})


def test_unknown_preset_rejected():
    with pytest.raises(ConfigError, match="preset 'huge'"):
        build_space([], preset="huge")


def test_non_numeric_value_rejected():
    with pytest.raises(ConfigError, match=r"'momentum'.*'abc' is not a number"):
        space_for_network("dscnn_se").complete({"momentum": "abc"})
