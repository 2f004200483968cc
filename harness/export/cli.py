"""The `harness export` subcommand."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from harness.errors import ConfigError
from harness.export import gate

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `harness export` to the `harness` parser."""
    parser = subparsers.add_parser(
        "export",
        help="convert a checkpoint or a .tflite model into TFLite, C arrays and generated C",
        description=(
            "Write an export directory: model.tflite, the TFLite Micro C array, the generated C "
            "runtime (model.h, model.c), int8 test inputs, TFLite Micro reference outputs and export.json."
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, metavar="DIR", help="checkpoint saved by `harness evaluate --save`")
    source.add_argument("--tflite", type=Path, metavar="FILE", help="int8 .tflite model trained elsewhere")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the export.json record to FILE")
    parser.add_argument(
        "--inputs", type=Path, metavar="FILE.npy",
        help="with --tflite: test inputs, samples x input shape (int8, or float to quantize)",
    )
    parser.add_argument("--labels", type=Path, metavar="FILE.npy", help="with --tflite: int labels of --inputs")
    parser.add_argument(
        "--calibration-samples", type=int, default=64, metavar="N",
        help="training samples used for int8 calibration (default 64)",
    )
    parser.add_argument(
        "--gate-samples", type=int, default=gate.DEFAULT_GATE_SAMPLES, metavar="N",
        help=f"held-out samples of the numeric gate (default {gate.DEFAULT_GATE_SAMPLES})",
    )
    parser.add_argument(
        "--min-top1-agreement", type=float, default=gate.DEFAULT_MIN_TOP1_AGREEMENT, metavar="F",
        help=f"gate threshold: fraction of equal top-1 classes (default {gate.DEFAULT_MIN_TOP1_AGREEMENT})",
    )
    parser.add_argument(
        "--min-logit-cosine", type=float, default=gate.DEFAULT_MIN_LOGIT_COSINE, metavar="F",
        help=f"gate threshold: mean cosine of int8 and float logits (default {gate.DEFAULT_MIN_LOGIT_COSINE})",
    )
    parser.add_argument(
        "--max-test-samples", type=int, default=None, metavar="N",
        help="write at most N test samples (default: the whole test split)",
    )
    parser.add_argument(
        "--no-arena-probe", action="store_true",
        help="skip the TFLite Micro arena search (tflm_arena_bytes is then null)",
    )
    parser.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    """Run `harness export` with parsed arguments."""
    from harness.export import pipeline

    if args.checkpoint is not None and (args.inputs is not None or args.labels is not None):
        raise ConfigError("--inputs and --labels apply only with --tflite; a checkpoint brings its test split")
    if args.calibration_samples < 1:
        raise ConfigError(f"--calibration-samples must be at least 1, got {args.calibration_samples}")
    if args.max_test_samples is not None and args.max_test_samples < 1:
        raise ConfigError(f"--max-test-samples must be at least 1, got {args.max_test_samples}")
    if args.checkpoint is not None:
        record = pipeline.export_checkpoint(
            args.checkpoint, args.out,
            calibration_samples=args.calibration_samples,
            gate_samples=args.gate_samples,
            min_top1_agreement=args.min_top1_agreement,
            min_logit_cosine=args.min_logit_cosine,
            max_test_samples=args.max_test_samples,
            probe_arena=not args.no_arena_probe,
        )
    else:
        record = pipeline.export_tflite(
            args.tflite, args.out, inputs_path=args.inputs, labels_path=args.labels,
            probe_arena=not args.no_arena_probe,
        )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=2, sort_keys=True))
    print(json.dumps(
        {key: record[key] for key in ("model_hash", "host_int8_accuracy", "gate", "tflm_arena_bytes",
                                      "generated_arena_bytes", "weight_bytes")},
        indent=2,
    ))
    return 0
