"""`harness deploy` and `harness boards` (registered by harness.cli)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness.hil.boards import list_boards, load_board
from harness.hil.build import RUNTIMES


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this area's subcommands to the `harness` parser."""
    deploy_parser = subparsers.add_parser(
        "deploy",
        help="build an export directory for a board and run its test set on it",
        description=(
            "Build the firmware with the exported model, run the test inputs on the board "
            "(or its emulator), check the outputs against the host int8 reference and report "
            "accuracy, latency, flash and RAM."
        ),
    )
    deploy_parser.add_argument("--board", required=True, help="board profile name (see `harness boards`)")
    deploy_parser.add_argument("--model", required=True, type=Path, help="export directory written by `harness export`")
    deploy_parser.add_argument("--runtime", choices=RUNTIMES, default="generated", help="inference runtime (default: generated)")
    deploy_parser.add_argument("--json", type=Path, help="also write the result as JSON to this file")
    deploy_parser.add_argument("--out", type=Path, help="directory for firmware.elf and firmware.map (default: MODEL/deploy/BOARD-RUNTIME)")
    deploy_parser.add_argument("--port", help="serial port or pyserial URL of a real board (overrides the profile)")
    deploy_parser.add_argument(
        "--no-upload", action="store_true",
        help="real boards: do not flash, use the firmware already on the board (checked by model hash)",
    )
    deploy_parser.set_defaults(func=_run_deploy)

    boards_parser = subparsers.add_parser("boards", help="list the board profiles")
    boards_parser.add_argument("--json", action="store_true", help="print the profiles as JSON")
    boards_parser.set_defaults(func=_run_boards)


def _format_bytes(value: int | None) -> str:
    return "-" if value is None else f"{value:,} B"


def _run_deploy(args: argparse.Namespace) -> int:
    from harness.hil.deploy import deploy

    profile = load_board(args.board)
    result = deploy(profile, args.model, args.runtime, out_dir=args.out, port=args.port, upload=not args.no_upload)
    record = result.as_dict()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=2) + "\n")

    print(f"board {result.board}, runtime {result.runtime}, model {result.model_hash}")
    if result.overflows:
        for overflow in result.overflows:
            print(f"  does not fit: region {overflow['region']} overflowed by {overflow['overflow_bytes']:,} B (linker)")
        return 1
    accuracy = "-" if result.device_accuracy is None else f"{result.device_accuracy:.4f}"
    host = "-" if result.host_int8_accuracy is None else f"{result.host_int8_accuracy:.4f}"
    print(f"  device accuracy   {accuracy} on {result.samples} samples (host int8 {host}; outputs bit-equal to {result.reference_source})")
    unit = "instructions" if result.latency_source == "qemu-icount" else "cycles"
    print(
        f"  latency           {result.latency_cycles:,} {unit} per inference, median ({result.latency_source}; "
        f"min {result.latency_cycles_min:,}, max {result.latency_cycles_max:,})"
    )
    if result.latency_us is not None:
        print(f"                    {result.latency_us:,.1f} us at {profile.clock_hz / 1e6:g} MHz")
    print(f"  flash             {_format_bytes(result.flash_bytes)} total, {_format_bytes(result.model_flash_bytes)} model (linker map)")
    print(f"  RAM               {_format_bytes(result.ram_bytes)} total, {_format_bytes(result.model_ram_bytes)} model (linker map)")
    print(
        f"  arena             {_format_bytes(result.arena_bytes)}, {_format_bytes(result.arena_used_bytes)} used; "
        f"stack high-water {_format_bytes(result.stack_high_water_bytes)} of {_format_bytes(result.stack_bytes)} (device)"
    )
    print(
        f"  build {result.build_seconds:.2f} s by {result.build_method} ({result.build_compiled_units} units "
        f"compiled), device {result.device_seconds:.2f} s"
    )
    print(f"  elf               {result.elf}")
    return 0


def _run_boards(args: argparse.Namespace) -> int:
    profiles = list_boards()
    if args.json:
        print(json.dumps([
            {
                "name": p.name, "mcu": p.mcu, "core": p.core, "fpu": p.fpu, "clock_hz": p.clock_hz,
                "emulator": p.emulator.kind, "machine": p.emulator.machine,
                "flash_bytes": p.region("flash").length, "ram_bytes": p.region("ram").length,
                "upload": p.upload_method, "constraints": p.constraints,
            }
            for p in profiles
        ], indent=2))
        return 0
    print(f"{'board':<20} {'mcu':<13} {'core':<10} {'clock':>8} {'flash':>9} {'ram':>9} {'runs on':<22}")
    for p in profiles:
        runs_on = f"qemu {p.emulator.machine}" if p.emulated else f"board ({p.upload_method})"
        print(
            f"{p.name:<20} {p.mcu:<13} {p.core:<10} {p.clock_hz / 1e6:>6g}MHz "
            f"{p.region('flash').length // 1024:>7}KB {p.region('ram').length // 1024:>7}KB {runs_on:<22}"
        )
    return 0
