import numpy as np
import pytest
import torch
from botorch.utils.multi_objective.hypervolume import Hypervolume
from botorch.utils.multi_objective.pareto import is_non_dominated

from harness.optim.hypervolume import contributions, feasible_hypervolume, hypervolume


def _botorch_hv(Y):
    Y = torch.as_tensor(Y, dtype=torch.double)
    Y = Y[(Y > 0).all(-1)]
    return Hypervolume(torch.zeros(Y.shape[-1], dtype=torch.double)).compute(Y[is_non_dominated(Y)])


@pytest.mark.parametrize("m", [2, 3, 4])
def test_hypervolume_equals_botorch(m):
    rng = np.random.default_rng(m)
    Y = rng.random((30, m)) - 0.1  # some points below the reference
    assert hypervolume(Y) == pytest.approx(_botorch_hv(Y), rel=1e-9)


def test_hypervolume_hand_value():
    Y = np.array([[0.5, 0.5], [0.2, 0.8], [-0.1, 0.9]])
    assert hypervolume(Y) == pytest.approx(0.25 + 0.2 * 0.3)


def test_feasible_hypervolume_ignores_infeasible():
    Y = np.array([[0.5, 0.5], [0.9, 0.9]])
    assert feasible_hypervolume(Y, np.array([True, False])) == pytest.approx(0.25)
    assert feasible_hypervolume(Y, np.array([False, False])) == 0.0


def test_single_objective_is_best_value():
    assert hypervolume(np.array([[0.3], [0.7], [-1.0]])) == pytest.approx(0.7)


def test_contributions_of_front():
    Y = np.array([[0.5, 0.5], [0.2, 0.8], [0.1, 0.1]])
    c = contributions(Y)
    assert c[0] == pytest.approx(0.3 * 0.5)
    assert c[1] == pytest.approx(0.2 * 0.3)
    assert c[2] == 0.0
