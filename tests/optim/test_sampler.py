import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from harness.errors import ConfigError
from harness.optim.sampler import StrategySampler, to_unit, to_value
from harness.optim.spec import Objective
from tests.optim.conftest import FAST_OPTIONS

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _objective(trial):
    x = trial.suggest_float("x", 0.0, 1.0)
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    k = trial.suggest_int("k", 1, 5)
    kind = trial.suggest_categorical("kind", ["a", "b"])
    trial.set_constraint("budget", x + 0.1 * k - 0.9)  # feasible when x + 0.1 k <= 0.9
    accuracy = 0.5 + 0.4 * x - 0.1 * abs(np.log10(lr) + 2) + (0.05 if kind == "b" else 0)
    return accuracy, 0.2 * k + (1 - x) ** 2


def _study(strategy, seed=0, n_trials=14, **kwargs):
    sampler = StrategySampler(strategy, seed=seed, n_init=6,
                              options=FAST_OPTIONS.get(strategy, {}), **kwargs)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(_objective, n_trials=n_trials)
    return study


def test_ars_sampler_runs_constrained_study():
    study = _study("ars")
    trials = study.trials
    assert len(trials) == 14
    assert all(t.state == TrialState.COMPLETE for t in trials)
    feasible = [t for t in trials if all(v <= 0 for v in t.constraints.values())]
    assert feasible
    # proposals after the initial design come from the strategy
    assert all(t.system_attrs.get("harness.optim:strategy", {}).get("name") == "ars" for t in trials[6:])
    for t in trials:
        assert 1e-4 <= t.params["lr"] <= 1e-1
        assert t.params["k"] in range(1, 6)
        assert t.params["kind"] in ("a", "b")


def test_sampler_is_deterministic_under_seed():
    a = [t.params for t in _study("ars", seed=4, n_trials=9).trials]
    b = [t.params for t in _study("ars", seed=4, n_trials=9).trials]
    assert a == b


def test_sampler_with_constraints_func_and_specs():
    def constraints(trial):
        return [trial.params["x"] - 0.8]

    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        y = trial.suggest_float("y", 0.0, 1.0)
        return x * y, (1 - x) + y

    specs = [Objective("acc", "maximize"), Objective("cost", "minimize", bound=2.0, hard=False)]
    sampler = StrategySampler("parego", seed=0, n_init=5, objectives=specs,
                              constraints_func=constraints, options=FAST_OPTIONS["parego"])
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(objective, n_trials=8)
    assert all(len(t.constraints) == 1 for t in study.trials)
    assert len(sampler._optimizer.constraints) == 1


def test_sampler_handles_failed_and_running_trials():
    sampler = StrategySampler("ars", seed=0, n_init=4, options=FAST_OPTIONS["ars"])
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    for i in range(6):
        trial = study.ask()
        x = trial.suggest_float("x", 0.0, 1.0)
        y = trial.suggest_float("y", 0.0, 1.0)
        if i == 2:
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, [x, 1 - x + y])
    running = study.ask()
    xr = running.suggest_float("x", 0.0, 1.0)
    yr = running.suggest_float("y", 0.0, 1.0)
    other = study.ask()
    xo = other.suggest_float("x", 0.0, 1.0)
    yo = other.suggest_float("y", 0.0, 1.0)
    assert (xr, yr) != (xo, yo)
    opt = sampler._optimizer
    assert sum(t.state.value == "failed" for t in opt.trials) == 1
    assert len(opt.trials) == 6


def test_enqueued_trial_is_told_with_its_own_params():
    sampler = StrategySampler("random", seed=0, n_init=3)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    objective = lambda t: (t.suggest_float("x", 0, 1), 1 - t.suggest_float("y", 0, 1))
    study.optimize(objective, n_trials=4)
    study.enqueue_trial({"x": 0.125, "y": 0.875})
    study.optimize(objective, n_trials=2)
    enqueued = study.trials[4]
    assert enqueued.params == {"x": 0.125, "y": 0.875}
    told = [t for t in sampler._optimizer.trials if np.allclose(t.x, [0.125, 0.875])]
    assert len(told) == 1


def test_sampler_rejects_mismatched_directions():
    specs = [Objective("acc", "maximize"), Objective("cost", "maximize")]
    sampler = StrategySampler("random", seed=0, n_init=2, objectives=specs)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    with pytest.raises(ConfigError, match="direction"):
        study.optimize(lambda t: (t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)), n_trials=4)


@pytest.mark.parametrize(
    "dist,value",
    [
        (FloatDistribution(0.0, 2.0), 1.5),
        (FloatDistribution(1e-5, 1e-2, log=True), 1e-3),
        (FloatDistribution(0.0, 1.0, step=0.25), 0.75),
        (IntDistribution(20, 200), 57),
        (IntDistribution(1, 64, log=True), 8),
        (IntDistribution(0, 10, step=2), 6),
        (CategoricalDistribution(["sgd", "adam", "rmsprop"]), "adam"),
    ],
)
def test_distribution_round_trip(dist, value):
    u = to_unit(dist, value)
    assert 0.0 <= u <= 1.0
    assert to_value(dist, u) == pytest.approx(value) if not isinstance(value, str) else to_value(dist, u) == value


def test_unknown_strategy_rejected():
    with pytest.raises(ConfigError, match="strategy"):
        StrategySampler("bogus")
