"""`harness run`, `harness report` and `harness compare`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.study.config import (
    STRATEGIES,
    build_config,
    load_study_file,
    parse_space_flag,
    parse_strategy_option_flag,
)


def _run(args: argparse.Namespace) -> int:
    import torch

    from harness.study import interrupts

    # SIGTERM (kill, a CI timeout) ends the study like Ctrl-C, so the running
    # trial is recorded instead of being left RUNNING.
    interrupts.install()

    from harness.study.report import write_report
    from harness.study.runner import CONFIG_FILE, run_study

    # Small-batch training and GP fitting run faster on one thread on 2 cores.
    torch.set_num_threads(1)
    file_fields = load_study_file(args.study) if args.study else {}
    if args.resume and args.out and not args.study and (args.out / CONFIG_FILE).is_file():
        import json

        saved = json.loads((args.out / CONFIG_FILE).read_text())
        file_fields = saved
    flags = {
        "dataset": args.dataset,
        "network": args.network,
        "board": args.board,
        "strategy": args.strategy,
        "trials": args.trials,
        "seed": args.seed,
        "preset": args.preset,
        "out": args.out,
        "name": args.name,
        "storage": args.storage,
        "initial_trials": args.initial_trials,
        "calibration_samples": args.calibration_samples,
        "runtime": args.runtime,
        "space": parse_space_flag(args.param) or None,
        "strategy_options": parse_strategy_option_flag(args.strategy_option) or None,
    }
    config = build_config(file_fields, flags)
    try:
        directory = run_study(config, resume=args.resume, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"harness run: interrupted; the running trial is recorded as failed and proposed again "
              f"on the next run of the same command", file=sys.stderr)
        return interrupts.exit_status()
    report = write_report(directory)
    print(f"study finished: {directory}")
    print(f"report: {report}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from harness.study.report import write_report

    out = write_report(args.study_dir, threshold=args.accuracy_threshold)
    print(f"report written to {out}")
    for name in sorted(p.name for p in out.iterdir()):
        print(f"  {name}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from harness.study.report import compare_studies

    out = compare_studies(args.study_dirs, args.out)
    print((out / "hypervolume.md").read_text())
    print(f"comparison written to {out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `harness run`, `harness report` and `harness compare`."""
    run = subparsers.add_parser(
        "run",
        help="run (or resume) a study: train, export, build and measure on a board",
        description="Run a study from a TOML file and/or flags (flags override the file). "
        "Rerunning the same command, or adding --resume, continues a killed study.",
    )
    run.add_argument("study", nargs="?", type=Path, help="study TOML file")
    run.add_argument("--dataset", help="dataset name (default basicmotions)")
    run.add_argument("--network", help="network name (default dscnn_se)")
    run.add_argument("--board", help="board profile (default qemu-mps2-an386)")
    run.add_argument("--strategy", choices=STRATEGIES, help="optimizer (default ars)")
    run.add_argument(
        "--strategy-option", action="append", metavar="KEY=VALUE",
        help="strategy option, repeatable, e.g. learning_rate=0.01 (see docs/optimizers.md)",
    )
    run.add_argument("--trials", type=int, help="total finished trials (complete or infeasible)")
    run.add_argument("--seed", type=int, help="study seed")
    run.add_argument("--preset", help="search space preset: default, published or small")
    run.add_argument(
        "--param", action="append", metavar="KEY=LOW:HIGH|KEY=VALUE",
        help="override an interval, or fix a parameter (repeatable)",
    )
    run.add_argument("--out", type=Path, help="study directory (default results/<study name>)")
    run.add_argument("--name", help="study name (default built from dataset, network, board, strategy, seed)")
    run.add_argument("--storage", help="Optuna storage URL (default SQLite in the study directory)")
    run.add_argument("--initial-trials", type=int, help="Latin-hypercube trials before the model-based strategy (default 10)")
    run.add_argument(
        "--calibration-samples", type=int,
        help="training samples used to calibrate int8 quantization (default 64; each costs export time)",
    )
    run.add_argument("--runtime", choices=("generated", "tflm"), help="firmware runtime (default generated)")
    run.add_argument("--resume", action="store_true", help="continue an existing study; fail if there is none")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    run.set_defaults(func=_run)

    report = subparsers.add_parser("report", help="write a study's report into STUDY_DIR/report/")
    report.add_argument("study_dir", type=Path)
    report.add_argument(
        "--accuracy-threshold", type=float, default=0.7,
        help="accuracy the summary's smallest-resource figures must reach (default 0.7)",
    )
    report.set_defaults(func=_report)

    compare = subparsers.add_parser("compare", help="overlay the Pareto fronts of several studies")
    compare.add_argument("study_dirs", type=Path, nargs="+")
    compare.add_argument("--out", type=Path, required=True, help="directory for the comparison")
    compare.set_defaults(func=_compare)
