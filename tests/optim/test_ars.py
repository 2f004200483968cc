import numpy as np
import pytest
import torch

from harness.optim.hypervolume import pareto_mask
from harness.optim.strategies.ars import (
    ARSMOBO,
    PolicyShape,
    final_rollouts,
    policy_step,
    select_start_states,
    train_policies,
)


def _quadratic_score(target):
    def score(states):
        return -((states - target) ** 2).sum(-1)

    return score


def test_ars_update_converges_on_quadratic():
    d = 3
    target = torch.full((d,), 0.7)
    starts = torch.full((2, d), 0.3)
    shape = PolicyShape(d, 64)
    gen = torch.Generator().manual_seed(0)
    theta, history, _, _ = train_policies(
        starts,
        _quadratic_score(target),
        shape,
        n_directions=200,
        top=20,
        horizon=4,
        learning_rate=0.02,
        noise=0.02,
        iterations=60,
        generator=gen,
    )
    visited = final_rollouts(starts, theta, shape, 4)  # L x H x d
    start_dist = (starts - target).norm(dim=-1)
    end_dist = (visited[:, -1] - target).norm(dim=-1)
    assert (end_dist < 0.3 * start_dist).all(), (start_dist, end_dist)
    assert history[-1] > history[0]


def test_zero_policy_does_not_move():
    shape = PolicyShape(4, 64)
    theta = shape.split(torch.zeros(2, shape.n_params))
    x = torch.rand(2, 1, 1, 4)
    assert torch.equal(policy_step(x.clone(), theta), x)


def test_policy_parameter_count():
    # two linear layers d -> 64 -> d with biases
    assert PolicyShape(25, 64).n_params == 25 * 64 + 64 + 64 * 25 + 25


def test_kmeans_start_states_are_distinct_front_points():
    rng = np.random.default_rng(0)
    angle = rng.random(40) * np.pi / 2
    Y = np.c_[np.cos(angle), np.sin(angle)] * rng.uniform(0.5, 1.0, (40, 1))
    feasible = np.ones(40, dtype=bool)
    front = np.flatnonzero(pareto_mask(Y))
    assert len(front) > 5
    idx = select_start_states(Y, feasible, np.zeros(40), 5, seed=0)
    assert len(idx) == 5
    assert len(set(idx.tolist())) == 5
    assert set(idx.tolist()) <= set(front.tolist())


def test_start_states_fill_from_next_layers_then_infeasible():
    Y = np.array([[1.0, 0.0], [0.0, 1.0], [0.4, 0.4], [0.1, 0.1], [0.9, 0.9]])
    feasible = np.array([True, True, True, True, False])
    viol = np.array([0, 0, 0, 0, 0.5])
    idx = select_start_states(Y, feasible, viol, 5, seed=0)
    assert set(idx[:3].tolist()) == {0, 1, 2}  # front then second layer
    assert idx[3] == 3
    assert idx[4] == 4  # the infeasible point comes last


@pytest.mark.parametrize(
    "option,value,text",
    [
        ("n_directions", 0, "n_directions"),
        ("top_fraction", 1.5, "top_fraction"),
        ("horizon", 0, "horizon"),
        ("learning_rate", -1.0, "learning_rate"),
        ("n_policies", 0, "n_policies"),
        ("score_threads", -1, "score_threads"),
    ],
)
def test_ars_rejects_invalid_options(option, value, text):
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match=text) as err:
        ARSMOBO(2, 2, 0, [False, False], 0, **{option: value})
    assert repr(value) in str(err.value)


def test_ars_defaults_are_published_ones():
    s = ARSMOBO(25, 4, 0, [False] * 4)
    assert (s.n_directions, s.top, s.horizon, s.n_policies, s.hidden) == (3000, 30, 4, 5, 64)
    assert (s.learning_rate, s.noise, s.rho) == (1e-3, 1e-2, 0.005)


def test_default_iterations_move_policy_far():
    # At lr 1e-3 a policy's step grows by about 0.005 per ARS iteration.
    # With 10 iterations a rollout ended about 0.2 from its start, too close.
    d = 5
    s = ARSMOBO(d, 2, 0, [False, False])
    direction = torch.ones(d) / d**0.5
    starts = torch.full((1, d), 0.2)

    def reward(states):  # linear, so the best policy keeps going one way
        return states @ direction

    theta, _, _, _ = s.train(starts, reward, torch.Generator().manual_seed(0))
    moved = (final_rollouts(starts, theta, s.shape, s.horizon)[0, -1] - starts[0]).norm()
    assert moved > 0.3, float(moved)


class _FixedPosterior:
    """A stand-in for PosteriorCache with a fixed marginal mean and std per state."""

    def __init__(self, mu, sd):
        self.mu, self.sd = mu, sd

    def marginal(self, states, dtype=torch.float32):
        return self.mu.to(dtype), self.sd.to(dtype)


def test_score_matches_scalarization_reference():
    from harness.optim.scalarization import chebyshev, penalized_reward, violation

    # 3 objectives (the first and last with hard bounds) and 1 constraint
    hard = [True, False, True]
    s = ARSMOBO(4, 3, 1, hard, negative_scale=1e-3, penalty=2.0, mc_samples=16)
    gen = torch.Generator().manual_seed(3)
    M = 5000  # more than one block of states
    mu = torch.randn(M, 4, generator=gen, dtype=torch.float64) * 0.3 + 0.1
    sd = torch.rand(M, 4, generator=gen, dtype=torch.float64) * 0.2
    weights = np.array([0.2, 0.5, 0.3])
    base = s.base_samples(7)
    f_star = 0.02
    got = s.make_score(_FixedPosterior(mu, sd), weights, f_star, base)(torch.zeros(M, 4))

    xi = mu[:, None, :] + sd[:, None, :] * base.double()  # (M, S, 4)
    y, c = xi[..., :3], xi[..., 3:]
    f = chebyshev(y, weights, s.rho)
    r = penalized_reward(f, f_star, violation(y, c, np.array(hard)), 1e-3, 2.0)
    want = r.mean(dim=-1)
    # both branches of the reward occur
    assert (want > 0).any()
    assert (want < 0).any()
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)


def test_perturbed_step_matches_explicit_policies():
    # The rollout of direction k uses theta + nu phi_k and theta - nu phi_k
    d, h, L, B, nu = 3, 8, 2, 4, 0.05
    shape = PolicyShape(d, h)
    gen = torch.Generator().manual_seed(0)
    theta = 0.3 * torch.randn(L, shape.n_params, generator=gen, dtype=torch.float64)
    phi = torch.randn(L * B, shape.n_params, generator=gen, dtype=torch.float64)
    x = torch.rand(L, B, 2, d, generator=gen, dtype=torch.float64)
    got = policy_step(x.clone(), shape.split(theta), shape.split(phi), nu)
    for l in range(L):
        for b in range(B):
            for s, sign in enumerate((1.0, -1.0)):
                th = theta[l] + sign * nu * phi[l * B + b]
                want = policy_step(x[l, b, s].reshape(1, 1, 1, d).clone(), shape.split(th[None]))
                torch.testing.assert_close(got[l, b, s], want.reshape(d))
