"""int8 constants emitted as string-literal pieces read back byte for byte."""

import subprocess

import numpy as np
import pytest

from harness.export.codegen import _c_bytes
from harness.export.host_runner import HOST_CFLAGS, find_host_compiler

MAIN_C = r"""
#include <stdint.h>
#include <stdio.h>
%s
int main(void)
{
    const int8_t *bytes = (const int8_t *)&g_weights;
    return fwrite(bytes, 1, sizeof g_weights, stdout) == sizeof g_weights ? 0 : 1;
}
"""


@pytest.mark.parametrize("size", [1, 4095, 4096, 9000])
def test_c_bytes_round_trip(tmp_path, size):
    compiler = find_host_compiler()
    if compiler is None:
        pytest.skip("no host C compiler")
    values = np.random.default_rng(size).integers(-128, 128, size).astype(np.int8)
    declaration = _c_bytes("g_weights", values)
    assert declaration.count("int8_t piece") == -(-size // 4095)
    source = tmp_path / "bytes.c"
    source.write_text(MAIN_C % declaration)
    binary = tmp_path / "bytes"
    subprocess.run([compiler, *HOST_CFLAGS, str(source), "-o", str(binary)], check=True)
    output = subprocess.run([str(binary)], capture_output=True, check=True).stdout
    assert np.array_equal(np.frombuffer(output, dtype=np.int8), values)
