"""One trial on the host: train with pruning, remove pruned channels, score.

`harness evaluate` runs it from the command line; the study runner calls
`evaluate_config` for the training stage of every trial.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.compress.flops import count_flops
from harness.compress.pruning import count_parameters
from harness.data import DATASETS, DatasetSplits, load_dataset
from harness.errors import ConfigError
from harness.models import NETWORKS, build_network
from harness.space import PRESETS, parse_param_assignments, space_for_network
from harness.train import EpochCallback, accuracy, deterministic, finalize, save_checkpoint, train

log = logging.getLogger(__name__)

# Source of each reported number, stored with the numbers.
SOURCES = {
    "test_accuracy": "host float32 PyTorch, test split, after physical pruning",
    "val_accuracy": "host float32 PyTorch, validation split, after physical pruning",
    "flops": "analytic count: 2 x MACs of convolutions and linear layers (+ bias adds)",
    "params": "PyTorch trainable parameter count after physical pruning",
    "wall_time_s": "host wall clock of the whole evaluation",
}


def evaluate_config(
    dataset: str,
    network: str,
    params: Mapping[str, Any],
    *,
    seed: int = 0,
    preset: str = "default",
    splits: DatasetSplits | None = None,
    save_dir: Path | None = None,
    on_epoch: EpochCallback | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Train, prune and score one configuration.

    Args:
        dataset: a registered dataset name (ignored when `splits` is given).
        network: a registered network name.
        params: parameter values; missing ones take the search space defaults.
        seed: seed of the validation split, weight initialization and shuffling.
        preset: search space preset whose defaults fill missing parameters.
        splits: already loaded data, to avoid reloading it in a study.
        save_dir: if given, the pruned checkpoint is written there.

    Returns:
        The metrics record (see `SOURCES` for the meaning of each number).
    """
    started = time.perf_counter()
    space = space_for_network(network, preset=preset)
    config = space.complete(params)
    if splits is None:
        splits = load_dataset(dataset, seed=seed)
    with deterministic(seed):
        model = build_network(network, splits.input_shape, splits.num_classes)
        channels_before = {g.name: g.channels for g in model.pruning_groups()}
        result = train(model, splits, config, seed=seed, on_epoch=on_epoch, progress=progress)
        kept = finalize(model)
        metrics: dict[str, Any] = {
            "dataset": splits.name,
            "network": network,
            "seed": seed,
            "config": config,
            "val_accuracy": accuracy(model, splits.X_val, splits.y_val),
            "test_accuracy": accuracy(model, splits.X_test, splits.y_test),
            "flops": count_flops(model, splits.input_shape),
            "params": count_parameters(model),
            "kept_channels": kept,
            "channels_before": channels_before,
            "final_train_loss": result.losses[-1],
            "input_shape": list(splits.input_shape),
            "num_classes": splits.num_classes,
            "wall_time_s": time.perf_counter() - started,
            "sources": SOURCES,
        }
    if save_dir is not None:
        meta = {
            "dataset": splits.name,
            "network": network,
            "seed": seed,
            "params": config,
            "input_shape": list(splits.input_shape),
            "num_classes": splits.num_classes,
            "classes": splits.classes,
            "kept_channels": kept,
            "val_accuracy": metrics["val_accuracy"],
            "test_accuracy": metrics["test_accuracy"],
            "flops": metrics["flops"],
            "params_count": metrics["params"],
        }
        save_checkpoint(Path(save_dir), model, meta)
    return metrics


def format_metrics(metrics: Mapping[str, Any]) -> str:
    """Render a metrics record as aligned text lines."""
    lines = [
        f"dataset         {metrics['dataset']}",
        f"network         {metrics['network']}",
        f"test_accuracy   {metrics['test_accuracy']:.4f}",
        f"val_accuracy    {metrics['val_accuracy']:.4f}",
        f"flops           {metrics['flops']:,}",
        f"params          {metrics['params']:,}",
        f"wall_time_s     {metrics['wall_time_s']:.1f}",
        "kept channels   "
        + ", ".join(
            f"{name} {kept}/{metrics['channels_before'][name]}"
            for name, kept in metrics["kept_channels"].items()
        ),
    ]
    return "\n".join(lines)


def _check_writable(path: Path, flag: str, directory: bool) -> None:
    """Fail before training when an output path cannot be written."""
    target = path if directory else path.parent
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"{flag} {path}: cannot create directory {target}: {err.strerror}") from err
    if not directory and path.is_dir():
        raise ConfigError(f"{flag} {path}: is a directory; give a file name")
    probe = path if not directory else path / ".write-test"
    existed = probe.exists()
    try:
        with open(probe, "a"):
            pass
    except OSError as err:
        raise ConfigError(f"{flag} {path}: cannot write {probe}: {err.strerror}") from err
    if not existed:
        probe.unlink()


def _run(args: argparse.Namespace) -> int:
    import torch

    if args.threads < 0:
        raise ConfigError(f"--threads {args.threads} is invalid; allowed: integer >= 0 (0: torch's default)")
    if args.seed < 0:
        raise ConfigError(f"--seed {args.seed} is invalid; allowed: integer >= 0")
    if args.json is not None:
        _check_writable(args.json, "--json", directory=False)
    if args.save is not None:
        _check_writable(args.save, "--save", directory=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    params = parse_param_assignments(args.param)
    metrics = evaluate_config(
        args.dataset,
        args.network,
        params,
        seed=args.seed,
        preset=args.preset,
        splits=load_dataset(args.dataset, seed=args.seed, data_dir=args.data_dir),
        save_dir=args.save,
        progress=not args.no_progress,
    )
    print(format_metrics(metrics))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(metrics, indent=2, sort_keys=True))
        print(f"metrics written to {args.json}")
    if args.save is not None:
        print(f"pruned checkpoint saved in {args.save}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `harness evaluate`."""
    parser = subparsers.add_parser(
        "evaluate",
        help="train, prune and score one configuration on the host",
        description="Train one configuration with gradual filter pruning, remove the pruned "
        "channels and report accuracy, FLOPs and parameters.",
    )
    parser.add_argument("--dataset", default="basicmotions", help=f"dataset name ({', '.join(DATASETS[:8])}, ...)")
    parser.add_argument("--network", default="dscnn_se", choices=NETWORKS, help="network to train")
    parser.add_argument(
        "--param", action="append", metavar="KEY=VALUE",
        help="set one parameter, e.g. epochs=50 or sparsity.conv3=0.5 (repeatable); "
        "unset parameters take the search space defaults",
    )
    parser.add_argument("--preset", default="default", choices=PRESETS, help="search space preset for defaults")
    parser.add_argument("--seed", type=int, default=0, help="seed of data split, initialization and shuffling")
    parser.add_argument("--data-dir", type=Path, help="directory of datasets no package ships (default $HARNESS_DATA_DIR or ./data)")
    parser.add_argument("--save", type=Path, metavar="DIR", help="write the pruned checkpoint into DIR")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the metrics as JSON to FILE")
    # Small batches of short series train several times faster on one thread
    # than on two (measured on a 2-core machine: 0.35 s against 2.8 s per
    # epoch of dscnn_se on BasicMotions), because thread hand-offs dominate.
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for training (0: torch's default)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=_run)
