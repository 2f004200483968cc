"""Measure what more ARS iterations per proposal buy on a fixed model.

For each seed: evaluate a 40-point Latin-hypercube design of a benchmark
problem, fit the GPs once, draw one weight vector, and train the L policies
with 5, 10, 20 and 40 ARS iterations (same start states, same noise table).
For each count it prints the CPU seconds of training, the reward (acquisition
value) of the proposed state, its distance from its start state, and the true
improvement of the scalarized objective over f* when the problem is
evaluated there.

    PYTHONPATH=. python scripts/ars_iterations.py --problem nas --seeds 3
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from harness.optim.gp import PosteriorCache, fit_outputs
from harness.optim.optimizer import Optimizer
from harness.optim.problems import get_problem
from harness.optim.scalarization import chebyshev, sample_simplex
from harness.optim.strategies.ars import NoiseTable, final_rollouts, select_start_states


def measure(problem_name: str, seed: int, counts: list[int], n_design: int = 40) -> list[dict]:
    """Return one row per iteration count for one seed."""
    prob = get_problem(problem_name)
    opt = Optimizer(prob.dim, prob.objectives, prob.constraints, strategy="ars", seed=seed, n_init=n_design)
    for _ in range(n_design):
        x = opt.ask(1)[0]
        f, c = prob.evaluate(x)
        opt.tell(x, f, c)

    obs = opt.observations()
    ars = opt.strategy
    outputs = np.hstack([obs.Y, obs.C]) if obs.n_constraints else obs.Y
    cache = PosteriorCache(fit_outputs(obs.X, outputs))
    weights = sample_simplex(obs.Y.shape[1], np.random.default_rng(seed))
    f_star = float(chebyshev(obs.Y, weights, ars.rho)[obs.feasible].max())
    idx = select_start_states(obs.Y, obs.feasible, obs.violation, ars.n_policies, seed)
    starts = torch.as_tensor(obs.X[idx], dtype=torch.float32)
    score = ars.make_score(cache, weights, f_star, ars.base_samples(seed))
    table = NoiseTable(len(idx) * ars.n_directions, ars.shape.n_params,
                       torch.Generator().manual_seed(1), torch.float32)

    rows = []
    for count in counts:
        t0 = time.process_time()
        theta, _, _, _ = ars.train(starts, score, torch.Generator().manual_seed(seed), table, count)
        cpu = time.process_time() - t0

        visited = final_rollouts(starts, theta, ars.shape, ars.horizon)
        rewards = score(visited.reshape(-1, obs.dim)).reshape(len(idx), ars.horizon)
        best, step = rewards.max(dim=1)
        policy = int(best.argmax())
        x = visited[policy, step[policy]]
        f, c = prob.evaluate(x.double().numpy())
        y = np.array([o.normalize(v) for o, v in zip(prob.objectives, f)])
        rows.append({
            "seed": seed,
            "iterations": count,
            "cpu_s": cpu,
            "reward": float(best.max()),
            "distance": float((x - starts[policy]).norm()),
            "true_improvement": float(chebyshev(y[None], weights, ars.rho)[0] - f_star),
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default="nas")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--iterations", default="5,10,20,40", help="comma-separated counts")
    args = parser.parse_args()
    torch.set_num_threads(1)
    counts = [int(v) for v in args.iterations.split(",")]
    print("seed iterations cpu_s reward distance true_improvement")
    for seed in range(args.seeds):
        for r in measure(args.problem, seed, counts):
            print(f"{r['seed']} {r['iterations']} {r['cpu_s']:.1f} {r['reward']:.5f} "
                  f"{r['distance']:.3f} {r['true_improvement']:.4f}", flush=True)


if __name__ == "__main__":
    main()
