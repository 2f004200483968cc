"""Per-trial cost of the device stage on a QEMU board.

Run as `python -m harness.hil.benchmark --board qemu-mps2-an386 --model DIR
--next-model DIR2 [--runtime tflm]`.  It measures, with wall-clock timers:

1. a cold build of DIR (its build directory deleted first),
2. an incremental build of DIR2 right after, which is what a new trial costs
   (two exports of the same network, as two trials would produce); on an
   emulated board it replays the model's commands (`harness.hil.replay`),
3. a steady-state build: DIR, then DIR2 again, timing the second, which
   is what every trial after the second costs,
4. the device run of DIR2's test set: QEMU start, boot, identify, every
   sample, exit,

and reports the instruction count per inference from SysTick under
`-icount shift=0`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from harness.hil.boards import load_board
from harness.hil.build import RUNTIMES, build_dir_for, build_firmware
from harness.hil.deploy import load_export, run_on_emulator, ticks_to_cycles

VARIANT = "benchmark"


def run_benchmark(board: str, model_dir: Path, next_model_dir: Path, runtime: str = "generated") -> dict:
    """Measure the builds and the device run; return times in seconds and instruction counts."""
    profile = load_board(board)
    build_dir = build_dir_for(profile, runtime, VARIANT) / profile.pio_env
    shutil.rmtree(build_dir, ignore_errors=True)

    cold = build_firmware(profile, model_dir, runtime, variant=VARIANT)
    incremental = build_firmware(profile, next_model_dir, runtime, variant=VARIANT)
    # Back to the first model and then the second again: from the third
    # trial on, files equal in both exports (the kernels) stay compiled.
    build_firmware(profile, model_dir, runtime, variant=VARIANT)
    steady = build_firmware(profile, next_model_dir, runtime, variant=VARIANT)
    bundle = load_export(next_model_dir)

    started = time.perf_counter()
    outputs, ticks, _memory, identity = run_on_emulator(profile, steady.elf_path, bundle)
    device_seconds = time.perf_counter() - started
    instructions = ticks_to_cycles(profile, identity.cycles_source, ticks)

    return {
        "board": board,
        "runtime": runtime,
        "model": str(next_model_dir),
        "cold_build_s": round(cold.seconds, 2),
        "cold_build_units": len(cold.compiled),
        "incremental_build_s": round(incremental.seconds, 2),
        "incremental_build_units": len(incremental.compiled),
        "incremental_build_method": incremental.method,
        "steady_build_s": round(steady.seconds, 2),
        "steady_build_units": len(steady.compiled),
        "samples": len(bundle.inputs),
        "device_run_s": round(device_seconds, 2),
        "device_stage_s": round(steady.seconds + device_seconds, 2),
        "instructions_per_inference_median": int(np.median(instructions)),
        "instructions_per_inference_min": int(instructions.min()),
        "instructions_per_inference_max": int(instructions.max()),
        "outputs_equal_reference": bool(np.array_equal(outputs, bundle.reference)),
        "flash_bytes": incremental.memory.flash_bytes,
        "ram_bytes": incremental.memory.ram_bytes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", default="qemu-mps2-an386", help="QEMU board profile")
    parser.add_argument("--model", type=Path, required=True, help="export directory built cold")
    parser.add_argument("--next-model", type=Path, required=True, help="export directory built incrementally and run")
    parser.add_argument("--runtime", choices=RUNTIMES, default="generated", help="firmware runtime (default generated)")
    args = parser.parse_args()
    print(json.dumps(run_benchmark(args.board, args.model, args.next_model, args.runtime), indent=2))


if __name__ == "__main__":
    main()
