import numpy as np
import pytest
import torch

from harness.optim.scalarization import chebyshev, penalized_reward, sample_simplex, violation


def test_chebyshev_hand_values():
    # min(0.25*0.8, 0.75*0.4) + 0.005 * (0.2 + 0.3) = 0.2 + 0.0025
    assert chebyshev(np.array([0.8, 0.4]), [0.25, 0.75], 0.005) == pytest.approx(0.2025)
    # min(0.5*1.0, 0.5*-0.2) + 0.005 * (0.5 - 0.1) = -0.1 + 0.002
    assert chebyshev(np.array([1.0, -0.2]), [0.5, 0.5], 0.005) == pytest.approx(-0.098)


def test_chebyshev_torch_matches_numpy():
    y = np.array([[0.1, 0.9, 0.5], [0.7, 0.2, 0.4]])
    w = np.array([0.2, 0.3, 0.5])
    got = chebyshev(torch.tensor(y), w, 0.005).numpy()
    assert np.allclose(got, chebyshev(y, w, 0.005))


def test_penalized_reward_hand_values():
    f = np.array([0.5, 0.2, 0.5, 0.2])
    viol = np.array([0.0, 0.0, 0.3, 0.3])
    r = penalized_reward(f, 0.3, viol, negative_scale=1e-3, penalty=1.0)
    assert r[0] == pytest.approx(0.2)  # improvement counts fully
    assert r[1] == pytest.approx(-1e-4)  # a shortfall is scaled by 1e-3
    assert r[2] == pytest.approx(-0.3)  # violating sample: no improvement, minus the violation
    assert r[3] == pytest.approx(-1e-4 - 0.3)


def test_violation_counts_hard_bounds_and_constraints():
    y = np.array([[0.5, -0.2], [0.1, 0.3]])
    c = np.array([[0.1], [-1.0]])
    v = violation(y, c, np.array([False, True]))
    assert v.tolist() == pytest.approx([0.3, 0.0])


def test_simplex_weights_sum_to_one():
    rng = np.random.default_rng(0)
    w = np.array([sample_simplex(4, rng) for _ in range(200)])
    assert np.allclose(w.sum(1), 1.0)
    assert (w >= 0).all()
    assert np.allclose(w.mean(0), 0.25, atol=0.05)
