"""Skip marker of the tests that build the TensorFlow Lite Micro runtime."""

import os

import pytest

needs_tflm = pytest.mark.skipif(
    not os.environ.get("TFLM_ROOT"),
    reason="TFLite Micro sources not provided: set TFLM_ROOT to a tree made as docs/firmware.md "
    "(section TFLite Micro runtime) says, to run this",
)
