"""The `harness bench optimizers` subcommand (registered by harness.cli)."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from harness.errors import ConfigError
from harness.optim._validate import option_value

log = logging.getLogger(__name__)


def _parse_options(items: list[str] | None) -> dict[str, dict]:
    """Parse `STRATEGY.KEY=VALUE` items into {strategy: {key: value}}."""
    options: dict[str, dict] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        strategy, dot, name = key.partition(".")
        strategy, name = strategy.strip(), name.strip()
        if not sep or not dot or not strategy or not name:
            raise ConfigError(
                f"--option {item!r}: expected STRATEGY.KEY=VALUE, for example ars.iterations=10"
            )
        if name in options.get(strategy, {}):
            raise ConfigError(f"--option {item!r}: {strategy}.{name} is given more than once")
        options.setdefault(strategy, {})[name] = option_value(raw.strip())
    return options


def _bench_optimizers(args: argparse.Namespace) -> int:
    from harness.optim.bench import plot_hypervolume, read_rows, run_benchmark, write_summary

    out = Path(args.out)
    path = run_benchmark(
        problems=args.problems,
        strategies=args.strategies,
        seeds=args.seeds,
        budget=args.budget,
        out=out,
        n_init=args.n_init,
        jobs=args.jobs,
        options=_parse_options(args.option),
    )
    rows = read_rows(path)
    plot = plot_hypervolume(rows, out / "hv.png")
    command = "harness " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else ""
    summary = write_summary(rows, out / "summary.md", command=command)
    print(f"wrote {path}, {plot} and {summary}")
    return 0


def _bench_proposal_time(args: argparse.Namespace) -> int:
    import json

    from harness.optim.bench import proposal_time

    options = _parse_options(args.option)
    results = []
    for strategy in args.strategies:
        for rep in range(args.repeats):
            r = proposal_time(args.problem, strategy, n=args.n, seed=rep, options=options.get(strategy, {}))
            results.append(r)
            print(json.dumps(r), flush=True)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `harness bench optimizers` to the `harness` parser."""
    from harness.optim.optimizer import BENCH_STRATEGIES, STRATEGIES
    from harness.optim.problems import PROBLEMS

    bench = subparsers.add_parser("bench", help="benchmarks of harness components")
    kinds = bench.add_subparsers(dest="bench_kind", required=True, metavar="KIND")
    p = kinds.add_parser(
        "optimizers",
        help="feasible hypervolume over evaluations of the optimization strategies",
        description=(
            "Run every strategy on every problem for each seed, one evaluation at a time, "
            "and write DIR/hv.csv (problem, strategy, seed, evaluation, hypervolume, "
            "proposal_seconds), DIR/hv.png and DIR/summary.md. Runs already in hv.csv are skipped."
        ),
    )
    p.add_argument("--problems", nargs="+", default=list(PROBLEMS), metavar="P",
                   help=f"problem names (default: all of {', '.join(PROBLEMS)}; also dtlz2_d20_m4, "
                        "c2dtlz2_dD_mM, discbrake)")
    p.add_argument("--strategies", nargs="+", default=list(BENCH_STRATEGIES), metavar="S",
                   help=f"strategy names (default: {', '.join(BENCH_STRATEGIES)}; known: {', '.join(STRATEGIES)})")
    p.add_argument("--seeds", type=int, default=5, help="number of seeds, 0..N-1 (default 5)")
    p.add_argument("--budget", type=int, default=150, help="evaluations per run (default 150)")
    p.add_argument("--n-init", type=int, default=10, help="Latin-hypercube initial design size (default 10)")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel, one process each (default 1)")
    p.add_argument("--option", action="append", metavar="STRATEGY.KEY=VALUE",
                   help="strategy option, repeatable, e.g. ars.iterations=10")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=_bench_optimizers)

    t = kinds.add_parser(
        "proposal-time",
        help="wall time of one proposal after n evaluations (one JSON line per measurement)",
    )
    t.add_argument("--problem", default="nas", help="problem name (default nas, d=26)")
    t.add_argument("--strategies", nargs="+", default=["ars", "parego"], metavar="S")
    t.add_argument("--n", type=int, default=150, help="evaluated points before the timed proposal")
    t.add_argument("--repeats", type=int, default=1, help="measurements per strategy (seeds 0..R-1)")
    t.add_argument("--option", action="append", metavar="STRATEGY.KEY=VALUE")
    t.set_defaults(func=_bench_proposal_time)
