import numpy as np
import pytest

from harness.errors import ConfigError
from harness.optim.optimizer import Optimizer
from harness.optim.spec import Constraint, Objective, TrialState


def _opt(**kw):
    objectives = [
        Objective("accuracy", "maximize"),
        Objective("flash_bytes", "minimize", bound=1e6),
    ]
    return Optimizer(2, objectives, [Constraint("latency_us", upper=1000.0)], strategy="random", **kw)


def test_normalization_by_constraint():
    opt = _opt()
    x = opt.ask(1)[0]
    t = opt.tell(x, {"accuracy": 0.9, "flash_bytes": 2.5e5}, {"latency_us": 500.0})
    assert t.y.tolist() == pytest.approx([0.9, 0.75])  # accuracy, 1 - flash / limit
    assert t.c.tolist() == pytest.approx([-0.5])  # latency / limit - 1
    assert t.state == TrialState.COMPLETE
    assert opt.hypervolume == pytest.approx(0.9 * 0.75)


def test_hard_bound_and_constraint_make_infeasible():
    opt = _opt()
    X = opt.ask(2)
    over_flash = opt.tell(X[0], [0.9, 1.2e6], [10.0])
    slow = opt.tell(X[1], [0.9, 1e5], [2000.0])
    assert over_flash.state == TrialState.INFEASIBLE
    assert over_flash.violation == pytest.approx(0.2)
    assert slow.state == TrialState.INFEASIBLE
    assert slow.violation == pytest.approx(1.0)
    assert opt.hypervolume_history == [0.0, 0.0]


def test_failed_trial_is_explicit():
    opt = _opt()
    x = opt.ask(1)[0]
    t = opt.tell_failed(x, "training diverged")
    assert t.state == TrialState.FAILED
    assert t.reason == "training diverged"
    assert t.y is None
    assert opt.pending.shape == (0, 2)
    assert opt.hypervolume_history == [0.0]


def test_nan_objective_rejected():
    opt = _opt()
    x = opt.ask(1)[0]
    with pytest.raises(ConfigError, match="tell_failed"):
        opt.tell(x, [float("nan"), 1.0], [0.0])


def test_wrong_number_of_values_rejected():
    opt = _opt()
    with pytest.raises(ConfigError, match="objectives"):
        opt.tell([0.5, 0.5], [0.9], [0.0])
    with pytest.raises(ConfigError, match="x"):
        opt.tell([0.5, 1.5], [0.9, 1.0], [0.0])


def test_pending_until_told():
    opt = _opt()
    X = opt.ask(3)
    assert opt.pending.shape == (3, 2)
    opt.tell(X[1], [0.5, 1.0], [0.0])
    assert opt.pending.shape == (2, 2)
    assert opt.trials[0].source == "initial"


@pytest.mark.parametrize(
    "kwargs,text",
    [
        ({"dim": 0}, "argument `dim` must be an integer in \\[1, inf\\), got 0"),
        ({"n_init": -1}, "argument `n_init`"),
        ({"seed": -3}, "argument `seed`"),
        ({"strategy": "bogus"}, "argument `strategy` must be one of"),
        ({"strategy": "ars", "options": {"bogus": 1}}, "invalid option"),
    ],
)
def test_constructor_validation(kwargs, text):
    args = {"dim": 2, "objectives": [Objective("a", "maximize")], **kwargs}
    with pytest.raises(ConfigError, match=text):
        Optimizer(**args)


def test_objective_validation():
    with pytest.raises(ConfigError, match="bound"):
        Objective("flash_bytes", "minimize")
    with pytest.raises(ConfigError, match="direction"):
        Objective("x", "up", bound=1.0)
    with pytest.raises(ConfigError, match="ideal"):
        Objective("x", "minimize", bound=1.0, ideal=2.0)
