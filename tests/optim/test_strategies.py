import numpy as np
import pytest

from harness.optim.optimizer import BENCH_STRATEGIES, Optimizer
from harness.optim.problems import get_problem
from harness.optim.spec import TrialState
from tests.optim.conftest import FAST_OPTIONS

ALL = BENCH_STRATEGIES + ("sobol", "lhs")


def _run(problem, strategy, seed=0, budget=15, batch=(1, 2)):
    opt = Optimizer(
        problem.dim, problem.objectives, problem.constraints, strategy=strategy, seed=seed,
        options=FAST_OPTIONS.get(strategy, {}),
    )
    proposals = []
    i = 0
    while len(opt.trials) < budget:
        n = min(batch[i % len(batch)], budget - len(opt.trials))
        X = opt.ask(n)
        proposals.append(X)
        for x in X:
            f, c = problem.evaluate(x)
            opt.tell(x, f, c)
        i += 1
    return opt, np.vstack(proposals)


@pytest.mark.parametrize("strategy", ALL)
@pytest.mark.parametrize("problem_name", ["branincurrin", "c2dtlz2_d3_m2"])
def test_strategy_completes_15_evaluations(strategy, problem_name):
    problem = get_problem(problem_name)
    opt, X = _run(problem, strategy)
    assert len(opt.trials) == 15
    assert X.shape == (15, problem.dim)
    assert ((X >= 0) & (X <= 1)).all()
    states = {t.state for t in opt.trials}
    assert states <= {TrialState.COMPLETE, TrialState.INFEASIBLE}
    assert any(t.feasible for t in opt.trials)
    assert len(opt.hypervolume_history) == 15
    assert opt.hypervolume > 0
    assert all(np.isfinite(t.y).all() for t in opt.trials)
    # the hypervolume never decreases
    assert np.all(np.diff(opt.hypervolume_history) >= -1e-12)


@pytest.mark.parametrize("strategy", ["ars", "parego", "turbo", "morbo", "nsga2", "random"])
def test_same_seed_same_proposals(strategy):
    problem = get_problem("branincurrin")
    _, X1 = _run(problem, strategy, seed=3, budget=13)
    _, X2 = _run(problem, strategy, seed=3, budget=13)
    assert np.array_equal(X1, X2)


def test_different_seeds_differ():
    problem = get_problem("branincurrin")
    _, X1 = _run(problem, "ars", seed=1, budget=12)
    _, X2 = _run(problem, "ars", seed=2, budget=12)
    assert not np.allclose(X1, X2)


@pytest.mark.parametrize("strategy", ["ars", "parego", "turbo", "morbo", "nsga2"])
def test_pending_points_give_distinct_proposals(strategy):
    problem = get_problem("branincurrin")
    opt, _ = _run(problem, strategy, budget=12)
    first = opt.ask(1)[0]  # stays pending
    second, third = opt.ask(2)
    assert not np.allclose(first, second)
    assert not np.allclose(second, third)
    assert opt.pending.shape == (3, problem.dim)


def test_initial_design_is_shared_latin_hypercube():
    problem = get_problem("dtlz2")
    designs = []
    for strategy in ("ars", "random", "nsga2"):
        opt = Optimizer(problem.dim, problem.objectives, strategy=strategy, seed=5, n_init=10)
        designs.append(opt.ask(10))
    assert np.array_equal(designs[0], designs[1])
    assert np.array_equal(designs[0], designs[2])
    # one point per stratum in every coordinate
    strata = np.floor(designs[0] * 10).astype(int)
    for j in range(problem.dim):
        assert sorted(strata[:, j]) == list(range(10))


def test_ars_with_failures_and_no_feasible_point():
    problem = get_problem("c2dtlz2_d3_m2")
    opt = Optimizer(problem.dim, problem.objectives, problem.constraints, strategy="ars",
                    seed=0, n_init=4, options=FAST_OPTIONS["ars"])
    for i, x in enumerate(opt.ask(4)):
        if i == 0:
            opt.tell_failed(x, "diverged")
        else:
            opt.tell(x, [2.0, 2.0], [1.0])  # infeasible
    x = opt.ask(1)[0]
    assert x.shape == (problem.dim,)
    assert [t.state for t in opt.trials][:2] == [TrialState.FAILED, TrialState.INFEASIBLE]
    assert opt.hypervolume == 0.0


@pytest.mark.parametrize("name", ["seed", "dim", "hard"])
def test_reserved_option_names_rejected(name):
    from harness.errors import ConfigError
    from harness.optim.optimizer import make_strategy

    with pytest.raises(ConfigError, match="set by the problem or the study"):
        make_strategy("random", 2, 2, 0, [False, False], 0, **{name: 1})


@pytest.mark.parametrize("value", ["false", 0, 0.5])
def test_ars_float64_must_be_bool(value):
    from harness.errors import ConfigError
    from harness.optim.optimizer import make_strategy

    with pytest.raises(ConfigError, match="`float64` must be True or False"):
        make_strategy("ars", 2, 2, 0, [False, False], 0, float64=value)


def test_huge_thread_count_rejected():
    from harness.errors import ConfigError
    from harness.optim.optimizer import make_strategy

    with pytest.raises(ConfigError, match="score_threads"):
        make_strategy("ars", 2, 2, 0, [False, False], 0, score_threads=2**40)


def test_turbo_length_min_below_initial_length():
    from harness.errors import ConfigError
    from harness.optim.optimizer import make_strategy

    with pytest.raises(ConfigError, match="`length_min` must be a number in"):
        make_strategy("turbo", 2, 2, 0, [False, False], 0, length_min=0.9)


def test_long_option_value_shortened_in_error():
    from harness.errors import ConfigError
    from harness.optim.optimizer import make_strategy

    with pytest.raises(ConfigError) as info:
        make_strategy("ars", 2, 2, 0, [False, False], 0, iterations="x" * 20000)
    assert len(str(info.value)) < 300
