"""Benchmark of the strategies: hypervolume over evaluations on test problems.

`run_benchmark` runs every (problem, strategy, seed) with one evaluation at a
time and appends one row per evaluation to ``hv.csv``:

    problem, strategy, seed, evaluation, hypervolume, proposal_seconds

(the feasible hypervolume after that evaluation, normalized objectives,
reference point at the origin; the wall time of the `ask` that proposed
the point). Runs already complete in an existing ``hv.csv`` are skipped, so
an interrupted benchmark resumes. ``settings.json`` records the budget,
initial design and options, and a rerun with other settings is rejected.
`plot_hypervolume` draws the median and interquartile band per strategy,
one panel per problem, and `write_summary` ranks the strategies per
problem by median final hypervolume.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import platform
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from harness.errors import ConfigError
from harness.optim.optimizer import STRATEGIES, Optimizer, make_strategy
from harness.optim.problems import get_problem

log = logging.getLogger(__name__)

COLUMNS = ("problem", "strategy", "seed", "evaluation", "hypervolume", "proposal_seconds")


def run_one(
    problem: str,
    strategy: str,
    seed: int,
    budget: int,
    n_init: int = 10,
    options: dict | None = None,
    partial: Path | None = None,
) -> list[dict]:
    """Run one optimization and return its rows (one per evaluation).

    With `partial`, each row is also appended to that csv as soon as it
    exists, so a run that is killed leaves its curve so far on disk.
    """
    import torch

    torch.set_num_threads(1)
    prob = get_problem(problem)
    opt = Optimizer(
        prob.dim, prob.objectives, prob.constraints, strategy=strategy, seed=seed,
        n_init=n_init, options=options or {},
    )
    rows = []
    if partial is not None:
        partial.parent.mkdir(parents=True, exist_ok=True)
        _write(partial, [], mode="w")
    for i in range(budget):
        t0 = time.perf_counter()
        x = opt.ask(1)[0]
        seconds = time.perf_counter() - t0
        try:
            f, c = prob.evaluate(x)
        except Exception as err:  # a problem that cannot evaluate a point is a failed trial
            opt.tell_failed(x, repr(err))
        else:
            opt.tell(x, f, c)
        rows.append(
            {
                "problem": problem,
                "strategy": strategy,
                "seed": seed,
                "evaluation": i + 1,
                "hypervolume": opt.hypervolume,
                "proposal_seconds": seconds,
            }
        )
        if partial is not None:
            _write(partial, rows[-1:], mode="a")
        if (i + 1) % 25 == 0 and i + 1 < budget:
            log.info("%s/%s seed %d: %d of %d evaluations, hv %.4f",
                     problem, strategy, seed, i + 1, budget, opt.hypervolume)
    return rows


def _partial_path(out: Path, problem: str, strategy: str, seed: int) -> Path:
    """Return the csv a run in progress writes its rows to (removed once they are in hv.csv)."""
    return out / "partial" / f"{problem}-{strategy}-{seed}.csv"


def _worker(args):
    problem, strategy, seed, budget, n_init, options, out = args
    t0 = time.perf_counter()
    partial = _partial_path(out, problem, strategy, seed)
    rows = run_one(problem, strategy, seed, budget, n_init, options, partial=partial)
    return args, rows, time.perf_counter() - t0


def _finish(path: Path, args, rows: list[dict], seconds: float) -> None:
    """Append a finished run to hv.csv and drop its partial file."""
    problem, strategy, seed, *_, out = args
    _write(path, rows, mode="a")
    _partial_path(out, problem, strategy, seed).unlink(missing_ok=True)
    hypervolume = rows[-1]["hypervolume"]
    log.info("done %s/%s seed %d in %.0f s: hv %.4f", problem, strategy, seed, seconds, hypervolume)


def read_rows(path: Path) -> list[dict]:
    """Rows of an hv.csv with numeric fields converted."""
    if not path.exists() or (path.is_file() and path.stat().st_size == 0):
        return []
    try:
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            if tuple(reader.fieldnames or ()) != COLUMNS:
                raise ConfigError(
                    f"{path}: header is {reader.fieldnames!r}, expected {','.join(COLUMNS)}; "
                    "fix or move the file away"
                )
            rows = []
            line = 1
            for r in reader:
                line = reader.line_num
                if None in r or None in r.values():
                    raise ValueError(f"expected {len(COLUMNS)} fields")
                r["seed"] = int(r["seed"])
                r["evaluation"] = int(r["evaluation"])
                r["hypervolume"] = float(r["hypervolume"])
                r["proposal_seconds"] = float(r["proposal_seconds"])
                rows.append(r)
    except ConfigError:
        raise
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ConfigError(f"{path}: failed to read as a benchmark csv: {err}") from None
    except ValueError as err:
        raise ConfigError(
            f"{path}, line {line}: malformed row ({err}); delete that run's rows or move the file away"
        ) from None
    return rows


def run_benchmark(
    problems: Sequence[str],
    strategies: Sequence[str],
    seeds: int,
    budget: int,
    out: Path,
    n_init: int = 10,
    jobs: int = 1,
    options: dict[str, dict] | None = None,
) -> Path:
    """Run every (problem, strategy, seed) not yet in out/hv.csv; return the csv path."""
    for s in strategies:
        if s not in STRATEGIES:
            raise ConfigError(f"unknown strategy {s!r}; known: {', '.join(STRATEGIES)}")
    for p in problems:
        get_problem(p)  # raises ConfigError for an unknown name
    if budget < 1 or seeds < 1:
        raise ConfigError(f"--budget and --seeds must be at least 1, got {budget} and {seeds}")
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    problems = list(dict.fromkeys(problems))  # a name given twice would otherwise run twice
    strategies = list(dict.fromkeys(strategies))
    options = {k: dict(v) for k, v in (options or {}).items()}
    for s in options:
        if s not in strategies:
            raise ConfigError(
                f"--option {s}.*: strategy {s!r} is not benchmarked; --strategies are {', '.join(strategies)}"
            )
    _check_options(problems, strategies, options)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    settings = _check_settings(out, budget, n_init, options)
    path = out / "hv.csv"
    done = defaultdict(int)
    for r in read_rows(path):
        done[(r["problem"], r["strategy"], r["seed"])] += 1
    # A directory written before settings.json existed records its budget only in its row counts.
    longer = sorted({n for n in done.values() if n > budget})
    if longer:
        raise ConfigError(
            f"{path} contains runs of {longer[-1]} evaluations, more than --budget {budget}; "
            "use the same --budget or another --out"
        )
    _save_settings(out, settings)
    for problem, strategy, seed in [k for k, n in done.items() if n == budget]:
        # A kill between the append to hv.csv and the removal of this file leaves it behind.
        _partial_path(out, problem, strategy, seed).unlink(missing_ok=True)
    if jobs > 1:
        from harness.optim.gp import available_cores

        # Parallel runs share the cores, so each ARS-MOBO run scores on its share of them.
        ars = options.setdefault("ars", {})
        ars.setdefault("score_threads", max(1, available_cores() // jobs))
    tasks = [
        (p, s, seed, budget, n_init, options.get(s, {}), out)
        for p in problems
        for seed in range(seeds)
        for s in strategies
        if done[(p, s, seed)] < budget
    ]
    if any(0 < done[(t[0], t[1], t[2])] < budget for t in tasks):
        # a run cut short: drop its partial rows, it is rerun from the start
        keep = [r for r in read_rows(path) if done[(r["problem"], r["strategy"], r["seed"])] >= budget]
        _write(path, keep, mode="w")
    if not path.exists() or path.stat().st_size == 0:
        _write(path, [], mode="w")
    log.info("benchmark: %d runs to do, %d jobs, writing %s", len(tasks), jobs, path)
    if jobs <= 1:
        for task in tasks:
            _finish(path, *_worker(task))
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(_worker, t) for t in tasks]
            for fut in as_completed(futures):
                _finish(path, *fut.result())
    return path


def _check_options(problems: Sequence[str], strategies: Sequence[str], options: dict[str, dict]) -> None:
    """Build every strategy once, so a bad option fails before the first run, not hours later."""
    for problem in problems:
        prob = get_problem(problem)
        hard = [o.hard for o in prob.objectives]
        for strategy in strategies:
            make_strategy(
                strategy, prob.dim, len(prob.objectives), len(prob.constraints), hard, 0,
                **options.get(strategy, {}),
            )


def _check_settings(out: Path, budget: int, n_init: int, options: dict[str, dict]) -> dict:
    """Return this command's settings, or raise ConfigError if out/settings.json records others.

    Rows from other settings would be mixed into the same medians, or
    complete runs taken for unfinished ones.
    """
    path = out / "settings.json"
    settings = {"budget": budget, "n_init": n_init, "options": options}
    if not path.exists():
        return settings
    try:
        saved = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: failed to read ({err}); fix or move it away") from None
    if not isinstance(saved, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {saved!r}; fix or move it away")
    for key, value in settings.items():
        # JSON turns tuples into lists, so compare through the same round trip
        if json.loads(json.dumps(value)) != saved.get(key):
            raise ConfigError(
                f"{out} was run with {key} {saved.get(key)!r}, this command requests {value!r}; "
                "use the same settings or another --out"
            )
    return settings


def _save_settings(out: Path, settings: dict) -> None:
    """Write out/settings.json if it is missing, through a temporary file so a kill leaves no partial one."""
    path = out / "settings.json"
    if path.exists():
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _write(path: Path, rows: list[dict], mode: str) -> None:
    """Append rows, or with mode "w" replace the file atomically (a kill leaves the old or the new one)."""
    if mode == "w":
        tmp = path.with_name(path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        _append(tmp, rows, header=True)
        os.replace(tmp, path)
        return
    _append(path, rows, header=not path.exists() or path.stat().st_size == 0)


def _append(path: Path, rows: list[dict], header: bool) -> None:
    with path.open("a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        if header:
            w.writeheader()
        for r in rows:
            w.writerow({**r, "hypervolume": f"{r['hypervolume']:.6f}", "proposal_seconds": f"{r['proposal_seconds']:.3f}"})


def proposal_time(
    problem: str,
    strategy: str,
    n: int = 150,
    seed: int = 0,
    options: dict | None = None,
) -> dict:
    """Wall time of proposals after `n` evaluated points (uniform random designs).

    The strategy proposes twice: once from `n - 1` points (which also fits
    the models the next fit starts from, as in a running study) and once
    from `n` points; the second proposal is the one timed. Returns its wall
    seconds, its CPU seconds (this process, all threads) and the setting.
    On a shared machine the CPU seconds vary less than the wall time.
    """
    import torch

    if n < 1:
        raise ConfigError(f"--n must be at least 1 evaluated point, got {n}")
    torch.set_num_threads(1)
    prob = get_problem(problem)
    opt = Optimizer(prob.dim, prob.objectives, prob.constraints, strategy=strategy, seed=seed,
                    n_init=0, options=options or {})
    rng = np.random.default_rng([seed, 4242])
    for _ in range(n - 1):
        x = rng.random(prob.dim)
        f, c = prob.evaluate(x)
        opt.tell(x, f, c)
    x = opt.ask(1)[0]
    f, c = prob.evaluate(x)
    opt.tell(x, f, c)
    t0, c0 = time.perf_counter(), time.process_time()
    opt.ask(1)
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    return {"problem": problem, "strategy": strategy, "n": n, "dim": prob.dim,
            "objectives": len(prob.objectives), "seconds": seconds, "cpu_seconds": cpu_seconds,
            "options": options or {}}


# ---------------------------------------------------------------------------
# analysis


def curves(rows: list[dict]) -> dict[str, dict[str, np.ndarray]]:
    """problem -> strategy -> (seeds x evaluations) hypervolume array (complete runs only)."""
    runs: dict = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        runs[r["problem"]][r["strategy"]].setdefault(r["seed"], {})[r["evaluation"]] = r["hypervolume"]
    out: dict = {}
    for p, by_s in runs.items():
        out[p] = {}
        for s, by_seed in by_s.items():
            length = max(len(v) for v in by_seed.values())
            full = [
                [v[e] for e in range(1, length + 1)]
                for v in by_seed.values()
                if len(v) == length
            ]
            out[p][s] = np.array(full)
    return out


def plot_hypervolume(rows: list[dict], path: Path) -> Path:
    """Median and interquartile band of the feasible hypervolume, one panel per problem."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = curves(rows)
    problems = list(data)
    cols = min(3, max(1, len(problems)))
    nrows = math.ceil(len(problems) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5 * cols, 3.6 * nrows), squeeze=False)
    colors = {s: f"C{i}" for i, s in enumerate(sorted({s for p in data for s in data[p]}))}
    for ax, p in zip(axes.flat, problems):
        for s, arr in sorted(data[p].items()):
            if arr.size == 0:
                continue
            x = np.arange(1, arr.shape[1] + 1)
            q25, q50, q75 = np.percentile(arr, [25, 50, 75], axis=0)
            ax.plot(x, q50, color=colors[s], label=f"{s} (n={arr.shape[0]})", lw=1.6 if s == "ars" else 1.0)
            ax.fill_between(x, q25, q75, color=colors[s], alpha=0.15)
        ax.set_title(p)
        ax.set_xlabel("evaluations")
        ax.set_ylabel("feasible hypervolume")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(problems):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def summarize(rows: list[dict]) -> dict:
    """Per problem and strategy: median/IQR final hypervolume and mean proposal seconds."""
    data = curves(rows)
    secs: dict = defaultdict(list)
    for r in rows:
        if r["evaluation"] > 1:
            secs[(r["problem"], r["strategy"])].append(r["proposal_seconds"])
    table: dict = {}
    for p, by_s in data.items():
        table[p] = {}
        for s, arr in by_s.items():
            if arr.size == 0:
                continue
            final = arr[:, -1]
            table[p][s] = {
                "median": float(np.median(final)),
                "q25": float(np.percentile(final, 25)),
                "q75": float(np.percentile(final, 75)),
                "runs": int(arr.shape[0]),
                "evaluations": int(arr.shape[1]),
                "mean_proposal_seconds": float(np.mean(secs[(p, s)])) if secs[(p, s)] else 0.0,
            }
    return table


def write_summary(rows: list[dict], path: Path, command: str = "") -> Path:
    """Markdown: per problem, strategies ranked by median final feasible hypervolume."""
    table = summarize(rows)
    lines = ["# Optimizer benchmark", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += [
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}.",
        "Hypervolume: feasible points only, objectives normalized by their bounds, "
        "reference point at the origin.",
        "",
    ]
    wins = 0
    compared = 0
    for p, by_s in table.items():
        ranked = sorted(by_s.items(), key=lambda kv: -kv[1]["median"])
        lines += [
            f"## {p}",
            "",
            "| rank | strategy | median HV | IQR | runs x evals | mean proposal s |",
            "|---:|---|---:|---|---|---:|",
        ]
        for i, (s, v) in enumerate(ranked, 1):
            lines.append(
                f"| {i} | {s} | {v['median']:.4f} | {v['q25']:.4f} - {v['q75']:.4f} | "
                f"{v['runs']} x {v['evaluations']} | {v['mean_proposal_seconds']:.2f} |"
            )
        if "ars" in by_s and len(by_s) > 1:
            compared += 1
            ars = by_s["ars"]["median"]
            best_other = max(v["median"] for s, v in by_s.items() if s != "ars")
            ok = ars >= best_other - 1e-12
            wins += ok
            lines += ["", f"ARS-MOBO at least equal to every other strategy: {'yes' if ok else 'no'} "
                      f"(ARS {ars:.4f}, best other {best_other:.4f})."]
        lines.append("")
    if compared:
        lines += [
            f"**ARS-MOBO at least equal to every other strategy on {wins} of {compared} problems "
            f"({100.0 * wins / compared:.0f} %).**",
            "",
        ]
    path.write_text("\n".join(lines))
    return path
