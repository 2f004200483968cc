"""Benchmark problems for the optimizers, all defined on the unit cube.

Names accepted by `get_problem`:

* ``branincurrin``: BoTorch BraninCurrin (d = 2, 2 objectives).
* ``dtlz2``: BoTorch DTLZ2 with d = 6 and 2 objectives; ``dtlz2_d20_m4`` and
  any ``dtlz2_d{D}_m{M}`` select other sizes.
* ``c2dtlz2``: BoTorch C2DTLZ2 (d = 12, 2 objectives, 1 constraint);
  ``c2dtlz2_d{D}_m{M}`` likewise.
* ``vehiclesafety`` (d = 5, 3 objectives), ``carsideimpact`` (d = 7, 4
  objectives), ``weldedbeam`` (d = 4, 2 objectives, 4 constraints), ``discbrake``
  (d = 4, 2 objectives, 4 constraints): BoTorch's engineering problems.
* ``passino``: Passino's (2005) nutrient landscape on [0, 30]^2, single
  objective, minimum about -3.99 at (15, 5).
* ``nas``: a smooth synthetic stand-in for training, pruning and deploying
  the depthwise-separable CNN of the harness on its real search space
  (`harness.space.space_for_network("dscnn_se")`, 26 dimensions), with the
  four objectives (accuracy, flash, RAM, FLOPs) and the default limits
  1 MB flash, 256 KB RAM and 1e9 FLOPs.

For the BoTorch problems the hypervolume reference (each objective's
`bound`) is BoTorch's reference point, and the `ideal` values are lower
bounds of each objective estimated from 200,000 uniform random designs
(rounded outward), so normalized values lie roughly in [0, 1]. Those bounds
are references only (`hard=False`): a point beyond them is feasible but adds
no hypervolume. The NAS problem's limits are hard constraints as in the
harness's studies.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from harness.errors import ConfigError
from harness.optim.spec import MAXIMIZE, MINIMIZE, Constraint, Objective


@dataclass
class Problem:
    """A black-box problem: `evaluate(x)` with x in [0, 1]^dim returns raw values.

    `evaluate` returns (objectives (m,), constraints (k,)) in the units of
    the objective and constraint specs.
    """

    name: str
    dim: int
    objectives: list[Objective]
    constraints: list[Constraint]
    evaluate: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    description: str = ""
    parameter_names: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------
# BoTorch test functions


def _botorch_problem(name, fn, objectives, n_constraints=0, description="", g_leq_zero=False):
    """Wrap a BoTorch problem; constraints are told as values that must be <= 0.

    BoTorch's slack is >= 0 when feasible, except WeldedBeam, which follows
    pymoo's g <= 0 (`g_leq_zero`).
    """
    bounds = fn.bounds.double()
    lo, span = bounds[0], bounds[1] - bounds[0]

    def evaluate(x):
        X = lo + span * torch.as_tensor(np.asarray(x, dtype=float)).reshape(1, -1)
        f = fn.evaluate_true(X)[0].numpy()
        if n_constraints:
            g = fn._evaluate_slack_true(X)[0].numpy()
            c = g if g_leq_zero else -g
        else:
            c = np.zeros(0)
        return f, c

    constraints = [Constraint(f"c{i}", upper=0.0) for i in range(n_constraints)]
    return Problem(name, fn.dim, objectives, constraints, evaluate, description)


def _minimize(names, refs, ideals):
    return [
        Objective(n, MINIMIZE, bound=float(r), ideal=float(i), hard=False)
        for n, r, i in zip(names, refs, ideals)
    ]


def _dtlz(kind: str, dim: int, m: int) -> Problem:
    from botorch.test_functions.multi_objective import C2DTLZ2, DTLZ2

    if m < 2 or dim < m:
        raise ConfigError(
            f"problem {kind}: needs 2 <= objectives <= dimension, got d={dim}, m={m}"
        )
    refs = [1.1] * m
    objectives = _minimize([f"f{j}" for j in range(m)], refs, [0.0] * m)
    if kind == "dtlz2":
        return _botorch_problem(
            f"dtlz2_d{dim}_m{m}", DTLZ2(dim=dim, num_objectives=m), objectives,
            description=f"DTLZ2, d={dim}, {m} objectives",
        )
    return _botorch_problem(
        f"c2dtlz2_d{dim}_m{m}", C2DTLZ2(dim=dim, num_objectives=m), objectives, 1,
        description=f"C2DTLZ2, d={dim}, {m} objectives, 1 constraint",
    )


def _engineering(name: str) -> Problem:
    from botorch.test_functions import multi_objective as mo

    if name == "branincurrin":
        fn = mo.BraninCurrin()
        return _botorch_problem(
            name, fn, _minimize(["branin", "currin"], fn._ref_point, [0.0, 0.0]),
            description="BraninCurrin, d=2, 2 objectives",
        )
    if name == "vehiclesafety":
        fn = mo.VehicleSafety()
        ideals = [1660.0, 6.0, 0.04]
        return _botorch_problem(
            name, fn, _minimize(["mass", "acceleration", "toe_board"], fn._ref_point, ideals),
            description="VehicleSafety, d=5, 3 objectives",
        )
    if name == "carsideimpact":
        fn = mo.CarSideImpact()
        ideals = [17.0, 3.5, 10.5, 0.0]
        return _botorch_problem(
            name, fn, _minimize(["weight", "force", "velocity", "viol"], fn._ref_point, ideals),
            description="CarSideImpact, d=7, 4 objectives",
        )
    if name == "weldedbeam":
        fn = mo.WeldedBeam()
        return _botorch_problem(
            name, fn, _minimize(["cost", "deflection"], fn._ref_point, [0.0, 0.0]), 4,
            description="WeldedBeam, d=4, 2 objectives, 4 constraints", g_leq_zero=True,
        )
    if name == "discbrake":
        fn = mo.DiscBrake()
        return _botorch_problem(
            name, fn, _minimize(["mass", "stopping_time"], fn._ref_point, [-0.7, 1.1]), 4,
            description="DiscBrake, d=4, 2 objectives, 4 constraints",
        )
    raise KeyError(name)


# ---------------------------------------------------------------------------
# Passino's nutrient landscape

# (amplitude, width, centre) of each Gaussian bump, Passino (2005)
PASSINO_TERMS = (
    (5.0, 0.1, (15.0, 20.0)),
    (-2.0, 0.08, (20.0, 15.0)),
    (3.0, 0.08, (25.0, 10.0)),
    (2.0, 0.1, (10.0, 10.0)),
    (-2.0, 0.5, (5.0, 10.0)),
    (-4.0, 0.1, (15.0, 5.0)),
    (-2.0, 0.5, (8.0, 25.0)),
    (-2.0, 0.5, (21.0, 25.0)),
    (2.0, 0.5, (25.0, 16.0)),
    (2.0, 0.5, (5.0, 14.0)),
)


def passino_landscape(theta: np.ndarray) -> np.ndarray:
    """J(theta) = sum_i a_i exp(-w_i |theta - c_i|^2); theta: (..., 2) in [0, 30]^2."""
    theta = np.asarray(theta, dtype=float)
    out = np.zeros(theta.shape[:-1])
    for a, w, c in PASSINO_TERMS:
        out = out + a * np.exp(-w * ((theta - np.asarray(c)) ** 2).sum(-1))
    return out


def _passino() -> Problem:
    # grid search at 0.05 spacing: min -3.986 at (15, 5), max 4.964
    objective = Objective("J", MINIMIZE, bound=5.0, ideal=-4.0, hard=False)

    def evaluate(x):
        return np.array([float(passino_landscape(30.0 * np.asarray(x, dtype=float)))]), np.zeros(0)

    return Problem("passino", 2, [objective], [], evaluate, "Passino nutrient landscape, d=2")


# ---------------------------------------------------------------------------
# NAS-like problem

FLASH_LIMIT_BYTES = 1_000_000
RAM_LIMIT_BYTES = 256 * 1024
FLOPS_LIMIT = 1e9

# A plausible layout of the depthwise-separable CNN (one regular convolution,
# ten separable ones, squeeze-excitation after 10, 8, 6, 4, 2) on windows of
# 6 channels x 2048 samples: output channels and stride of each convolution.
_CONV_CHANNELS = (192, 192, 192, 384, 384, 384, 768, 768, 768, 768, 768)
_CONV_STRIDE = (2, 1, 2, 1, 2, 1, 2, 1, 1, 1, 1)
_INPUT_CHANNELS, _INPUT_LENGTH, _KERNEL = 6, 2048, 7
_SE_AFTER = (2, 4, 6, 8, 10)
_SE_REDUCTION = 4


def _sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z))


def nas_response(config: dict) -> tuple[float, float, float, float]:
    """Synthetic (accuracy, flash_bytes, ram_bytes, flops) of one configuration.

    Sparsities remove output channels (filter pruning); a layer's weights
    scale with the kept input and output channels, so memory and FLOPs fall
    with every sparsity and accuracy falls once the narrowest layers drop
    below about a third of their channels. Training terms: accuracy needs
    enough epochs, a learning rate near 3e-3 scaled with the batch size, a
    high momentum and enough fine-tuning epochs after pruning ends.
    """
    keep = [1.0 - float(config[f"sparsity.conv{i}"]) for i in range(len(_CONV_CHANNELS))]
    se_keep = {i: 1.0 - float(config[f"sparsity.se{i}"]) for i in _SE_AFTER}

    # 1. resources: channels after pruning, parameters, activations, FLOPs
    params = flops = 0.0
    peak_activation = 0.0
    c_in, length = float(_INPUT_CHANNELS), float(_INPUT_LENGTH)
    for i, (c, stride) in enumerate(zip(_CONV_CHANNELS, _CONV_STRIDE)):
        c_out = max(1.0, round(c * keep[i]))
        out_len = length / stride
        if i == 0:
            w = c_in * c_out * _KERNEL
        else:
            w = c_in * _KERNEL + c_in * c_out  # depthwise then pointwise
        params += w + 2 * c_out  # weights and folded batch-norm bias
        flops += 2 * w * out_len
        peak_activation = max(peak_activation, c_in * length + c_out * out_len)
        if i in se_keep:
            hidden = max(1.0, round(c / _SE_REDUCTION * se_keep[i]))
            params += 2 * c_out * hidden + hidden + c_out
            flops += 4 * c_out * hidden + 2 * c_out * out_len
        c_in, length = c_out, out_len
    params += c_in * 4 + 4  # classifier over 4 classes
    flash_bytes = params * 1.0 + 4 * sum(_CONV_CHANNELS) + 48_000  # int8 weights, int32 biases, runtime
    ram_bytes = peak_activation + 12_000  # int8 activations + runtime state
    flops = flops * 4.0  # per inference on four windows

    # 2. accuracy: capacity, pruning schedule, training hyperparameters
    bottleneck = -0.1 * math.log(sum(math.exp(-10 * k) for k in keep) / len(keep))
    mean_keep = sum(keep) / len(keep)
    capacity = 0.5 * bottleneck + 0.5 * mean_keep
    acc_capacity = 1.0 - 0.65 * _sigmoid((0.3 - capacity) / 0.05)
    se_mean = sum(se_keep.values()) / len(se_keep)
    acc_se = 1.0 - 0.05 * _sigmoid((0.25 - se_mean) / 0.05)

    epochs = float(config["epochs"])
    batch = float(config["batch_size"])
    lr_opt = 3e-3 * batch / 64.0
    lr_term = math.exp(-0.5 * (math.log10(float(config["lr"]) / lr_opt) / 0.7) ** 2)
    momentum_term = 1.0 - 0.15 * (0.99 - float(config["momentum"])) / 0.29
    epoch_term = 1.0 - math.exp(-epochs / 110.0)
    wd_term = 1.0 - 0.04 * (math.log10(float(config["weight_decay"])) + 4.0) ** 2 / 4.0
    schedule_term = 1.0 - 0.05 * abs(float(config["lr_step"]) - 0.6) - 0.05 * abs(
        float(config["lr_gamma"]) - 0.5
    )
    prune_span = float(config["prune_end"]) - float(config["prune_start"])
    finetune_epochs = (1.0 - float(config["prune_end"])) * epochs
    gradual = 1.0 - 0.1 * math.exp(-float(config["prune_steps"]) / 5.0) - 0.08 * math.exp(
        -prune_span / 0.3
    )
    finetune = 1.0 - 0.25 * math.exp(-finetune_epochs / 12.0) * (1.0 - mean_keep)
    train = lr_term * momentum_term * epoch_term * wd_term * schedule_term
    quality = max(0.0, train) * acc_capacity * acc_se * gradual * finetune
    chance = 0.25
    accuracy = chance + (0.975 - chance) * quality
    return accuracy, flash_bytes, ram_bytes, flops


def _nas() -> Problem:
    from harness.space import space_for_network

    space = space_for_network("dscnn_se")
    objectives = [
        Objective("accuracy", MAXIMIZE, bound=0.0, ideal=1.0),
        Objective("flash_bytes", MINIMIZE, bound=FLASH_LIMIT_BYTES, ideal=0.0, hard=True),
        Objective("ram_bytes", MINIMIZE, bound=RAM_LIMIT_BYTES, ideal=0.0, hard=True),
        Objective("flops", MINIMIZE, bound=FLOPS_LIMIT, ideal=0.0, hard=True),
    ]

    def evaluate(x):
        config = space.decode(np.asarray(x, dtype=float))
        return np.array(nas_response(config)), np.zeros(0)

    return Problem(
        "nas",
        space.dim,
        objectives,
        [],
        evaluate,
        f"synthetic dscnn_se response on the harness search space, d={space.dim}, 4 objectives",
        parameter_names=list(space.names),
    )


# ---------------------------------------------------------------------------

PROBLEMS = (
    "branincurrin",
    "dtlz2",
    "c2dtlz2",
    "vehiclesafety",
    "carsideimpact",
    "weldedbeam",
    "passino",
    "nas",
)
EXTRA_PROBLEMS = ("discbrake", "dtlz2_d20_m4", "dtlz2_d{D}_m{M}", "c2dtlz2_d{D}_m{M}")


def get_problem(name: str) -> Problem:
    """Build a benchmark problem by name (see the module docstring)."""
    match = re.fullmatch(r"(c2dtlz2|dtlz2)(?:_d(\d+)_m(\d+))?", name)
    if match:
        kind, d, m = match.groups()
        default_dim = 12 if kind == "c2dtlz2" else 6
        return _dtlz(kind, int(d) if d else default_dim, int(m) if m else 2)
    if name == "passino":
        return _passino()
    if name == "nas":
        return _nas()
    try:
        return _engineering(name)
    except KeyError:
        raise ConfigError(
            f"unknown problem {name!r}; known: {', '.join(PROBLEMS + EXTRA_PROBLEMS)}"
        ) from None
