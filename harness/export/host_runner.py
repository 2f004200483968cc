"""Compile a generated C runtime with the host C compiler and run it on int8 inputs.

Used to check the generated code against the TFLite Micro interpreter bit
for bit, on the host, before any firmware is built.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from harness.errors import BuildError, ExportError

logger = logging.getLogger(__name__)

HOST_CFLAGS = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic")
RUN_TIMEOUT_S = 300.0

_MAIN_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include "model.h"

/* Read samples of MODEL_INPUT_BYTES from stdin, write MODEL_OUTPUT_BYTES each to stdout. */
int main(void)
{
    static int8_t input[MODEL_INPUT_BYTES];
    static int8_t output[MODEL_OUTPUT_BYTES];
    while (fread(input, 1, MODEL_INPUT_BYTES, stdin) == MODEL_INPUT_BYTES) {
        if (model_invoke(input, output) != 0) {
            return 3;
        }
        if (fwrite(output, 1, MODEL_OUTPUT_BYTES, stdout) != MODEL_OUTPUT_BYTES) {
            return 4;
        }
    }
    return 0;
}
"""


def find_host_compiler() -> str | None:
    """Return the host C compiler (`$CC`, gcc or cc), or None when there is none."""
    for candidate in (os.environ.get("CC"), "gcc", "cc"):
        if candidate and shutil.which(candidate):
            return candidate
    return None


def build_host_binary(runtime_dir: Path, build_dir: Path) -> Path:
    """Compile every `.c` file of `runtime_dir` with a test main into `build_dir/model_host`."""
    compiler = find_host_compiler()
    if compiler is None:
        raise BuildError("no host C compiler found (set CC or install gcc) to check the generated C")
    build_dir.mkdir(parents=True, exist_ok=True)
    main = build_dir / "host_main.c"
    main.write_text(_MAIN_C)
    binary = build_dir / "model_host"
    sources = sorted(str(p) for p in runtime_dir.glob("*.c"))
    command = [compiler, *HOST_CFLAGS, f"-I{runtime_dir}", *sources, str(main), "-o", str(binary)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildError(
            f"host compilation of the generated C in {runtime_dir} failed "
            f"(exit {result.returncode}): {result.stderr.strip()[-2000:]}"
        )
    return binary


def run_host_binary(binary: Path, inputs: np.ndarray, output_elements: int) -> np.ndarray:
    """Run int8 `inputs` (samples x ...) through the binary; return samples x output_elements int8."""
    data = np.ascontiguousarray(inputs, dtype=np.int8)
    samples = data.shape[0]
    result = subprocess.run(
        [str(binary)], input=data.tobytes(), capture_output=True, timeout=RUN_TIMEOUT_S, check=False
    )
    if result.returncode != 0:
        raise ExportError(f"generated C binary {binary} exited with status {result.returncode}")
    out = np.frombuffer(result.stdout, dtype=np.int8)
    if out.size != samples * output_elements:
        raise ExportError(
            f"generated C binary wrote {out.size} bytes, expected {samples} x {output_elements}"
        )
    return out.reshape(samples, output_elements).copy()


def run_generated(runtime_dir: Path, inputs: np.ndarray, output_elements: int) -> np.ndarray:
    """Build the runtime in a temporary directory and run `inputs` through it."""
    with tempfile.TemporaryDirectory(prefix="harness-host-") as tmp:
        binary = build_host_binary(runtime_dir, Path(tmp))
        return run_host_binary(binary, inputs, output_elements)
