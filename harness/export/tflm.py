"""TFLite Micro on the host: reference outputs, the arena probe and the model C array.

The `tflite-micro` wheel runs the real TFLite Micro kernels on the host.
Its interpreter can crash the whole process when the arena is too small.
It also prints the allocation report with C-level stdio. The arena probe
therefore runs each trial in a fresh subprocess and reads the report from
that process's stderr.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from harness.errors import ExportError

logger = logging.getLogger(__name__)

# Upper bound of the arena search: the probe doubles from a first guess up to this.
MAX_ARENA_BYTES = 64 * 1024 * 1024
ARENA_PROBE_TIMEOUT_S = 120.0

_PROBE_SCRIPT = r"""
import sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime
model = open(sys.argv[1], "rb").read()
arena = int(sys.argv[2])
interpreter = runtime.Interpreter.from_bytes(model, arena_size=arena)
detail = interpreter.get_input_details(0)
interpreter.set_input(np.zeros(detail["shape"], dtype=detail["dtype"]), 0)
interpreter.invoke()
interpreter.print_allocations()
sys.stderr.flush()
print("PROBE_OK", flush=True)
"""


@dataclasses.dataclass(frozen=True)
class ArenaReport:
    """Smallest TFLite Micro arena that runs the model, and its allocation report."""

    arena_bytes: int
    used_bytes: int | None
    report: str
    source: str = "tflite-micro wheel, smallest working arena found by bisection"


def run_reference(model_bytes: bytes, inputs: np.ndarray, arena_bytes: int | None = None) -> np.ndarray:
    """Run `inputs` (samples x input shape, int8) through the TFLite Micro interpreter.

    Returns samples x output elements (int8).
    """
    from tflite_micro.python.tflite_micro import runtime

    arena = arena_bytes if arena_bytes is not None else max(len(model_bytes) * 10, 1 << 20)
    try:
        interpreter = runtime.Interpreter.from_bytes(
            model_bytes, arena_size=arena,
            intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors,
        )
    except (RuntimeError, ValueError) as err:
        raise ExportError(f"TFLite Micro cannot load the model: {err}") from err
    detail = interpreter.get_input_details(0)
    shape = tuple(int(d) for d in detail["shape"])
    outputs = []
    for sample in np.asarray(inputs):
        if sample.size != int(np.prod(shape)):
            raise ExportError(
                f"input sample of {sample.size} values does not fit the model input shape {list(shape)}"
            )
        interpreter.set_input(sample.reshape(shape).astype(detail["dtype"]), 0)
        interpreter.invoke()
        outputs.append(np.asarray(interpreter.get_output(0)).ravel().copy())
    return np.stack(outputs).astype(np.int8) if outputs else np.zeros((0, 0), np.int8)


def _probe(model_path: Path, arena_bytes: int) -> tuple[bool, str]:
    try:
        result = subprocess.run(
            [sys.executable, "-c", _PROBE_SCRIPT, str(model_path), str(arena_bytes)],
            capture_output=True, text=True, timeout=ARENA_PROBE_TIMEOUT_S, check=False,
        )
    except subprocess.TimeoutExpired:
        return False, f"probe timed out after {ARENA_PROBE_TIMEOUT_S} s"
    ok = result.returncode == 0 and "PROBE_OK" in result.stdout
    return ok, result.stderr


def parse_allocation_report(report: str) -> int | None:
    """Return the total arena bytes used from a RecordingMicroAllocator report, or None."""
    match = re.search(r"\[RecordingMicroAllocator\] Arena allocation total (\d+) bytes", report)
    return int(match.group(1)) if match else None


def probe_arena(model_path: Path, first_guess_bytes: int = 16 * 1024) -> ArenaReport:
    """Find the smallest arena (to 16 bytes) with which TFLite Micro loads and runs the model.

    Each trial runs in its own subprocess, because some undersized arenas
    crash the interpreter instead of returning an error.
    """
    high = max(first_guess_bytes, 1024)
    report = ""
    while True:
        ok, text = _probe(model_path, high)
        if ok:
            report = text
            break
        if high >= MAX_ARENA_BYTES:
            raise ExportError(
                f"TFLite Micro could not run {model_path} even with a {MAX_ARENA_BYTES}-byte arena; "
                f"last interpreter output: {text.strip()[-500:]}"
            )
        high *= 2
    used = parse_allocation_report(report)
    low = (used // 2) if used else 0
    if used:
        # The report's total is the natural lower bound; test it first.
        ok, text = _probe(model_path, used)
        if ok:
            high, report = used, text
        low = max(low, 0)
    while high - low > 16:
        middle = (low + high) // 2
        ok, text = _probe(model_path, middle)
        if ok:
            high, report = middle, text
        else:
            low = middle
    logger.info("TFLite Micro arena for %s: %d bytes (report total %s)", model_path, high, used)
    return ArenaReport(arena_bytes=high, used_bytes=parse_allocation_report(report), report=report)


def write_c_array(model_bytes: bytes, out_dir: Path, name: str = "g_model_data") -> tuple[Path, Path]:
    """Write `model_data.h` / `model_data.cc` holding the model as a 16-byte aligned array.

    The header states the size and the SHA-256 of the bytes so a firmware
    build can check it embeds the model it was meant to.
    """
    digest = hashlib.sha256(model_bytes).hexdigest()
    header = out_dir / "model_data.h"
    source = out_dir / "model_data.cc"
    header.write_text(
        f"""/* TFLite model as a C array for the TFLite Micro runtime; generated by `harness export`. */
#ifndef MODEL_DATA_H
#define MODEL_DATA_H

#include <stdint.h>

#define MODEL_DATA_BYTES {len(model_bytes)}
#define MODEL_DATA_SHA256 "{digest}"
#define MODEL_DATA_HASH "{digest[:16]}"

#ifdef __cplusplus
extern "C" {{
#endif

extern const unsigned char {name}[];
extern const unsigned int {name}_len;

#ifdef __cplusplus
}}
#endif

#endif /* MODEL_DATA_H */
"""
    )
    rows = []
    for start in range(0, len(model_bytes), 16):
        rows.append(", ".join(f"0x{b:02x}" for b in model_bytes[start : start + 16]))
    body = ",\n    ".join(rows)
    source.write_text(
        f"""/* TFLite model as a C array for the TFLite Micro runtime; generated by `harness export`. */
#include "model_data.h"

/* TFLite Micro reads the flatbuffer in place, which needs 16-byte alignment. */
alignas(16) const unsigned char {name}[] = {{
    {body}
}};
const unsigned int {name}_len = {len(model_bytes)};
"""
    )
    return header, source
