"""ARS-MOBO: multi-objective Bayesian optimization whose acquisition is
optimized by an ensemble of competing Augmented Random Search policies.

The method and its default hyperparameters come from the preprint "Neural
architecture search for TinyML with reinforcement learning"; ARS itself is
from Mania, Guy and Recht, "Simple random search of static linear policies
is competitive for reinforcement learning" (NeurIPS 2018).

One proposal round (see docs/optimizers.md for the full description):

1. fit one GP per objective and per explicit constraint (`harness.optim.gp`);
2. draw weights uniformly from the simplex; scalarize the normalized
   objectives with the augmented Chebyshev function (rho = 0.005); f* is the
   best scalarized value among the observed feasible points;
3. pick L start states from the feasible Pareto front (k-means on the front
   when it has more than L points);
4. train L MLP policies (state -> step, two linear layers, 64 hidden units,
   zero-initialized) with ARS: N antithetic directions, rollouts over H steps,
   top-b directions, update scaled by alpha / (b * sigma_R). Every rollout
   state of every policy and direction is scored in one batched call on the
   posterior marginals with fixed quasi-MC base samples;
5. roll every trained policy out from its start state and propose the best
   visited state; a batch takes the best states of different policies.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
from sklearn.cluster import KMeans

from harness.optim._validate import MAX_THREADS, check_bool, check_float, check_int
from harness.optim.gp import PosteriorCache, available_cores, fit_outputs, single_threaded
from harness.optim.hypervolume import pareto_mask
from harness.optim.scalarization import (
    DEFAULT_NEGATIVE_SCALE,
    DEFAULT_RHO,
    chebyshev,
    sample_simplex,
)
from harness.optim.strategies.base import Strategy

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------
# start states


def _nondominated_layers(Y: np.ndarray) -> list[np.ndarray]:
    """Indices of Y grouped by non-dominated layer (first layer = Pareto front)."""
    remaining = np.arange(Y.shape[0])
    layers = []
    while remaining.size:
        mask = pareto_mask(Y[remaining])
        if not mask.any():  # only exact duplicates left
            mask[:] = True
        layers.append(remaining[mask])
        remaining = remaining[~mask]
    return layers


def select_start_states(
    Y: np.ndarray, feasible: np.ndarray, viol: np.ndarray, n_states: int, seed: int = 0
) -> np.ndarray:
    """Indices of `n_states` observations to start the policies from.

    The feasible Pareto front first: when it has more than `n_states`
    points they are clustered by k-means in objective space and the member
    nearest each centroid is taken, so the starts spread over the front.
    A smaller front is completed with the next non-dominated layers of the
    feasible points, then with infeasible points by increasing violation;
    indices repeat only when there are fewer observations than states.
    """
    Y = np.asarray(Y, dtype=float)
    feasible = np.asarray(feasible, dtype=bool)
    n = Y.shape[0]
    if n == 0:
        return np.zeros(0, dtype=int)
    feas_idx = np.flatnonzero(feasible)
    chosen: list[int] = []
    if feas_idx.size:
        layers = [feas_idx[layer] for layer in _nondominated_layers(Y[feas_idx])]
        front = layers[0]
        if front.size > n_states:
            km = KMeans(n_clusters=n_states, n_init=10, random_state=seed)
            labels = km.fit_predict(Y[front])
            for c in range(n_states):
                members = front[labels == c]
                if members.size == 0:
                    continue
                dist = np.linalg.norm(Y[members] - km.cluster_centers_[c], axis=1)
                chosen.append(int(members[np.argmin(dist)]))
            # k-means can leave a cluster empty on ties: top up from the front
            for i in front:
                if len(chosen) >= n_states:
                    break
                if int(i) not in chosen:
                    chosen.append(int(i))
        else:
            for layer in layers:
                chosen.extend(int(i) for i in layer)
    if len(chosen) < n_states:
        infeas = np.flatnonzero(~feasible)
        infeas = infeas[np.argsort(viol[infeas], kind="stable")]
        chosen.extend(int(i) for i in infeas)
    chosen = chosen[:n_states]
    while len(chosen) < n_states:  # fewer observations than policies
        chosen.append(chosen[len(chosen) % max(1, len(set(chosen)))])
    return np.asarray(chosen, dtype=int)


# ---------------------------------------------------------------------------
# policies


class PolicyShape:
    """Layout of the flat parameter vector of the two-layer MLP policy."""

    def __init__(self, dim: int, hidden: int):
        self.dim, self.hidden = dim, hidden
        self.sizes = [dim * hidden, hidden, hidden * dim, dim]
        self.n_params = sum(self.sizes)

    def split(self, flat: torch.Tensor):
        """(..., p) -> W1 (..., d, h), b1 (..., h), W2 (..., h, d), b2 (..., d) (views)."""
        d, h = self.dim, self.hidden
        o1, o2, o3 = self.sizes[0], self.sizes[0] + self.sizes[1], sum(self.sizes[:3])
        lead = flat.shape[:-1]
        W1 = flat[..., :o1].reshape(*lead, d, h)
        b1 = flat[..., o1:o2]
        W2 = flat[..., o2:o3].reshape(*lead, h, d)
        b2 = flat[..., o3:]
        return W1, b1, W2, b2


def policy_step(x: torch.Tensor, theta, dirs=None, nu: float = 0.0) -> torch.Tensor:
    """Apply policies to states and return the clipped next states.

    x: (L, B, S, d) states, where S indexes the sign of the perturbation
       (S = 2: +nu and -nu; S = 1 with `dirs` None: the unperturbed policy).
    theta: split parameters of the L policies, W1 (L, d, h), ...
    dirs: split directions with a leading (L*B) batch, or None.

    The perturbed policy of a direction phi = (P1, p1, P2, p2) computes
    h = tanh(x W1 + b1 +- nu (x P1 + p1)) and x + h W2 + b2 +- nu (h P2 + p2).
    The shared part is one matrix product per policy. The direction part is
    a batch of (S x d) by (d x h) products, each fused with its bias.
    """
    W1, b1, W2, b2 = theta
    L, B, S, d = x.shape
    h = W1.shape[-1]
    pre = torch.baddbmm(b1[:, None, :], x.reshape(L, B * S, d), W1).reshape(L, B, S, h)
    if dirs is not None:
        P1, p1, P2, p2 = dirs
        sign = torch.tensor([nu, -nu], dtype=x.dtype).view(1, 1, 2, 1)
        pert = torch.baddbmm(p1.reshape(L * B, 1, h), x.reshape(L * B, S, d), P1)
        pre.addcmul_(pert.reshape(L, B, S, h), sign)
    hdn = pre.tanh_()
    act = torch.baddbmm(b2[:, None, :], hdn.reshape(L, B * S, h), W2).reshape(L, B, S, d)
    if dirs is not None:
        pert = torch.baddbmm(p2.reshape(L * B, 1, d), hdn.reshape(L * B, S, h), P2)
        act.addcmul_(pert.reshape(L, B, S, d), sign)
    return act.add_(x).clamp_(0.0, 1.0)


class NoiseTable:
    """A block of standard normal numbers from which ARS directions are read.

    As in Mania et al.'s implementation, directions are slices of one shared
    table at random offsets instead of fresh draws (drawing L x N x p normals
    per iteration would cost more than scoring the rollouts). Within one
    iteration the L x N directions are disjoint slices, so they are
    independent with i.i.d. standard normal entries.
    """

    def __init__(self, n_directions: int, n_params: int, generator: torch.Generator, dtype):
        self.n_directions, self.n_params = n_directions, n_params
        self.slack = max(n_params, 4096)
        self.table = torch.randn(n_directions * n_params + self.slack, generator=generator, dtype=dtype)

    def directions(self, generator: torch.Generator) -> torch.Tensor:
        """A (n_directions, n_params) strided view of the table."""
        off = int(torch.randint(0, self.slack, (1,), generator=generator))
        return self.table.as_strided((self.n_directions, self.n_params), (self.n_params, 1), off)


def train_policies(
    starts: torch.Tensor,
    score,
    shape: PolicyShape,
    *,
    n_directions: int,
    top: int,
    horizon: int,
    learning_rate: float,
    noise: float,
    iterations: int,
    generator: torch.Generator,
    table: NoiseTable | None = None,
    dtype=torch.float32,
):
    """Train one policy per start state with ARS; return (theta (L, p), history).

    `score(states)` maps an (M, d) tensor of states to rewards (M,); it is
    called once per iteration on all L x 2N x H rollout states.
    """
    L, d = starts.shape
    N, H, b = n_directions, horizon, top
    theta = torch.zeros(L, shape.n_params, dtype=dtype)
    if table is None:
        table = NoiseTable(L * N, shape.n_params, generator, dtype)
    history = []
    best_state = starts.clone()
    best_reward = torch.full((L,), -math.inf, dtype=dtype)
    for _ in range(iterations):
        flat = table.directions(generator)  # (L*N, p)
        dirs = shape.split(flat)
        th = shape.split(theta)
        x = starts.to(dtype)[:, None, None, :].expand(L, N, 2, d).contiguous()
        states = []
        for _t in range(H):
            x = policy_step(x, th, dirs, noise)
            states.append(x)
        S = torch.stack(states, dim=3)  # (L, N, 2, H, d)
        r = score(S.reshape(-1, d)).reshape(L, N, 2, H)
        # best visited state per policy, a fallback when a final rollout stalls
        flat_r = r.reshape(L, -1)
        val, arg = flat_r.max(dim=1)
        improved = val > best_reward
        if improved.any():
            cand = S.reshape(L, -1, d)[torch.arange(L), arg]
            best_state[improved] = cand[improved].to(best_state.dtype)
            best_reward[improved] = val[improved]
        R = r.sum(-1)  # (L, N, 2): summed over the horizon
        rp, rm = R[..., 0], R[..., 1]
        keep = torch.maximum(rp, rm).topk(b, dim=1).indices  # (L, b)
        rp_k = rp.gather(1, keep)
        rm_k = rm.gather(1, keep)
        sigma = torch.cat([rp_k, rm_k], dim=1).std(dim=1)  # (L,)
        sel = flat.reshape(L, N, -1).gather(
            1, keep.unsqueeze(-1).expand(L, b, shape.n_params)
        )  # (L, b, p)
        step = torch.einsum("lb,lbp->lp", rp_k - rm_k, sel)
        scale = torch.where(sigma > 1e-12, learning_rate / (b * sigma), torch.zeros_like(sigma))
        theta = theta + scale[:, None] * step
        history.append(float(R.mean()))
    return theta, history, best_state, best_reward


def final_rollouts(starts: torch.Tensor, theta: torch.Tensor, shape: PolicyShape, horizon: int):
    """States visited by the trained policies, shape (L, H, d) (start excluded)."""
    L, d = starts.shape
    th = shape.split(theta)
    x = starts.to(theta.dtype)[:, None, None, :]
    out = []
    for _ in range(horizon):
        x = policy_step(x, th)
        out.append(x[:, 0, 0, :])
    return torch.stack(out, dim=1)


# ---------------------------------------------------------------------------
# the strategy


class ARSMOBO(Strategy):
    """ARS-MOBO (strategy name ``ars``).

    Options (defaults are the preprint's where it gives one):
        n_directions (N, 3000), top_fraction (b as a fraction of N, 0.01),
        horizon (H, 4), learning_rate (1e-3), noise (1e-2), n_policies (L, 5),
        hidden (64), iterations (ARS updates per proposal, 20), rho (0.005),
        negative_scale (1e-3), penalty (1.0, weight of constraint violation),
        mc_samples (quasi-MC base samples per state, 32),
        threads (torch threads for the GP fit, 1), score_threads (torch
        threads for scoring rollout states, 0: one per core this process may
        use), float64 (score in double).
    """

    name = "ars"

    def __init__(
        self,
        dim,
        n_objectives,
        n_constraints,
        hard,
        seed=0,
        *,
        n_directions: int = 3000,
        top_fraction: float = 0.01,
        horizon: int = 4,
        learning_rate: float = 1e-3,
        noise: float = 1e-2,
        n_policies: int = 5,
        hidden: int = 64,
        iterations: int = 20,
        rho: float = DEFAULT_RHO,
        negative_scale: float = DEFAULT_NEGATIVE_SCALE,
        penalty: float = 1.0,
        mc_samples: int = 32,
        threads: int = 1,
        score_threads: int = 0,
        float64: bool = False,
    ):
        super().__init__(dim, n_objectives, n_constraints, hard, seed)
        self.n_directions = check_int("n_directions", n_directions, 1)
        self.top_fraction = check_float("top_fraction", top_fraction, 0.0, 1.0, low_open=True)
        self.top = max(1, int(round(self.top_fraction * self.n_directions)))
        self.horizon = check_int("horizon", horizon, 1)
        self.learning_rate = check_float("learning_rate", learning_rate, 0.0, low_open=True)
        self.noise = check_float("noise", noise, 0.0, low_open=True)
        self.n_policies = check_int("n_policies", n_policies, 1)
        self.hidden = check_int("hidden", hidden, 1)
        # NOTE: the method fixes no iteration count. At learning rate 1e-3 a
        # rollout of H = 4 steps ends about 0.02 x iterations from its start
        # (unit cube), and on `nas` the acquisition value of the proposal
        # still rose from 20 to 40 iterations. The default of 20 trades that
        # against proposal time (docs/optimizers.md, "ARS iterations").
        self.iterations = check_int("iterations", iterations, 0)
        self.rho = check_float("rho", rho, 0.0)
        self.negative_scale = check_float("negative_scale", negative_scale, 0.0)
        self.penalty = check_float("penalty", penalty, 0.0)
        self.mc_samples = check_int("mc_samples", mc_samples, 1)
        self.threads = check_int("threads", threads, 1, MAX_THREADS)
        # The batched posterior products scale with cores, while the GP fit's
        # small factorizations run faster on one thread on the 2-core machine.
        self.score_threads = check_int("score_threads", score_threads, 0, MAX_THREADS)
        self.dtype = torch.float64 if check_bool("float64", float64) else torch.float32
        self.shape = PolicyShape(dim, self.hidden)
        self._table: NoiseTable | None = None
        self._previous_model = None
        self.last_round: dict = {}

    # -- reward -------------------------------------------------------------
    def make_score(self, cache: PosteriorCache, weights, f_star: float, base: torch.Tensor):
        """Reward function over states: quasi-MC mean of the penalized improvement.

        It computes the reward of `chebyshev`, `violation` and
        `penalized_reward` in `harness.optim.scalarization` (a test checks
        that they agree) in few passes over blocks of posterior samples,
        because it runs on every rollout state of every ARS iteration.
        """
        m = self.n_objectives
        dtype = self.dtype
        w = torch.as_tensor(weights, dtype=dtype)
        hard = torch.as_tensor(np.asarray(self.hard, dtype=float), dtype=dtype)
        any_hard = bool(hard.any())
        z = base.to(dtype)  # (S, m + k)
        n_samples, width = z.shape
        chunk = max(1, 262_144 // (n_samples * width))
        rho, ns, pen = self.rho, self.negative_scale, self.penalty

        def score(states: torch.Tensor) -> torch.Tensor:
            mu, sd = cache.marginal(states, dtype=dtype)  # (M, m + k)
            out = torch.empty(states.shape[0], dtype=dtype)
            for s in range(0, states.shape[0], chunk):
                # posterior samples of this block, (c, S, m + k); small blocks stay in cache
                xi = torch.addcmul(mu[s : s + chunk, None, :], sd[s : s + chunk, None, :], z)
                y = xi[..., :m]
                prod = y * w
                d = prod.amin(dim=-1).add_(prod.sum(dim=-1), alpha=rho).sub_(f_star)
                viol = None
                if any_hard:
                    viol = y.neg().clamp_(min=0.0) @ hard
                if width > m:
                    cv = xi[..., m:].clamp(min=0.0).sum(dim=-1)
                    viol = cv if viol is None else viol.add_(cv)
                # an improvement counts when positive and feasible, and a shortfall counts ns times
                r = d.clamp(max=0.0).mul_(ns)
                gain = d.clamp_(min=0.0)
                if viol is not None:
                    gain.mul_(viol <= 0)
                    r.sub_(viol, alpha=pen)
                out[s : s + chunk] = r.add_(gain).mean(dim=-1)
            return out

        return score

    def base_samples(self, generator_seed: int) -> torch.Tensor:
        """Fixed quasi-MC standard normal base samples, (mc_samples, m + k)."""
        q = self.n_objectives + self.n_constraints
        engine = torch.quasirandom.SobolEngine(q, scramble=True, seed=generator_seed)
        u = engine.draw(self.mc_samples, dtype=torch.double).clamp(1e-6, 1 - 1e-6)
        return torch.distributions.Normal(0.0, 1.0).icdf(u)

    def train(self, starts, score, generator, table=None, iterations=None):
        """Train one policy per start state with this strategy's ARS settings.

        `iterations` overrides the configured count; see `train_policies`
        for the arguments and the returned (theta, history, best states,
        best rewards).
        """
        return train_policies(
            starts,
            score,
            self.shape,
            n_directions=self.n_directions,
            top=self.top,
            horizon=self.horizon,
            learning_rate=self.learning_rate,
            noise=self.noise,
            iterations=self.iterations if iterations is None else iterations,
            generator=generator,
            table=table,
            dtype=self.dtype,
        )

    # -- proposals ----------------------------------------------------------
    def _propose(self, obs, n, rng):
        out = []
        pending = np.asarray(obs.X_pending, dtype=float).reshape(-1, obs.dim)
        with single_threaded(self.threads):
            outputs = np.hstack([obs.Y, obs.C]) if obs.n_constraints else obs.Y
            model = fit_outputs(obs.X, outputs, previous=self._previous_model)
            self._previous_model = model
        with single_threaded(self.score_threads or available_cores()):
            while len(out) < n:
                X_pend = np.vstack([pending] + [np.atleast_2d(p) for p in out]) if (
                    len(pending) or out
                ) else np.zeros((0, obs.dim))
                batch = self._round(obs, model, X_pend, n - len(out), rng)
                out.extend(batch)
        return np.array(out[:n])

    def _round(self, obs, model, X_pending, q, rng) -> list[np.ndarray]:
        seed = int(rng.integers(2**31 - 1))
        gen = torch.Generator().manual_seed(seed)
        cache = PosteriorCache(model, X_pending)
        weights = sample_simplex(self.n_objectives, rng)
        f_obs = chebyshev(obs.Y, weights, self.rho)
        f_star = float(f_obs[obs.feasible].max()) if obs.feasible.any() else float(f_obs.max())
        idx = select_start_states(obs.Y, obs.feasible, obs.violation, self.n_policies, seed)
        starts = torch.as_tensor(obs.X[idx], dtype=self.dtype)
        score = self.make_score(cache, weights, f_star, self.base_samples(seed))
        L = starts.shape[0]
        if self._table is None or self._table.n_directions != L * self.n_directions:
            self._table = NoiseTable(
                L * self.n_directions,
                self.shape.n_params,
                torch.Generator().manual_seed(self.seed * 7919 + 17),
                self.dtype,
            )
        theta, history, best_train, best_train_r = self.train(starts, score, gen, self._table)
        visited = final_rollouts(starts, theta, self.shape, self.horizon)  # (L, H, d)
        r = score(visited.reshape(-1, obs.dim)).reshape(L, self.horizon)
        best_r, best_t = r.max(dim=1)
        cand = visited[torch.arange(L), best_t].double().numpy()
        known = np.vstack([obs.X, X_pending, obs.X_failed]) if len(obs.X_failed) else np.vstack(
            [obs.X, X_pending]
        )
        order = torch.argsort(best_r, descending=True).tolist()
        chosen: list[np.ndarray] = []
        for l in order:
            x = cand[l]
            if _near(x, known) or any(_near(x, c[None]) for c in chosen):
                # the policy did not leave known ground: use its best training state
                x = best_train[l].double().numpy()
                if _near(x, known) or any(_near(x, c[None]) for c in chosen):
                    continue
            chosen.append(x)
            if len(chosen) >= q:
                break
        if not chosen:  # every policy stalled on known points: a small random move
            x = np.clip(obs.X[idx[0]] + 0.05 * rng.standard_normal(obs.dim), 0, 1)
            chosen.append(x)
        self.last_round = {
            "weights": weights,
            "f_star": f_star,
            "start_indices": idx,
            "ars_mean_reward": history,
            "final_rewards": best_r.double().numpy(),
            "theta_norm": theta.norm(dim=1).double().numpy(),
        }
        return chosen


def _near(x: np.ndarray, others: np.ndarray, tol: float = 1e-6) -> bool:
    if others.size == 0:
        return False
    return bool((np.abs(np.atleast_2d(others) - x).max(axis=1) <= tol).any())
