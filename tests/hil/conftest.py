"""Fixtures of the hil tests: models, builds and running QEMU boards.

Builds are session-scoped (one per board and model per test session) and
reuse the firmware build directories, so a second session recompiles only
what changed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from handmade_model import write_handmade_model
from harness.hil.boards import load_board
from harness.hil.build import build_firmware
from harness.hil.emulators import QemuBoard
from harness.hil.protocol import DeviceClient
from harness.hil.transport import open_url



@pytest.fixture(scope="session")
def handmade_dir(tmp_path_factory) -> Path:
    return write_handmade_model(tmp_path_factory.mktemp("handmade") / "export")


@pytest.fixture(scope="session")
def an386_build(handmade_dir, tmp_path_factory):
    """The an386 firmware with the handmade model; ELF copied out of the shared build directory."""
    profile = load_board("qemu-mps2-an386")
    return profile, build_firmware(profile, handmade_dir, out_dir=tmp_path_factory.mktemp("an386-firmware"))


@pytest.fixture
def device(an386_build):
    """A freshly booted QEMU an386 running the handmade model, and its client."""
    profile, build = an386_build
    with QemuBoard(profile, build.elf_path, timeout_s=60) as emulator:
        with open_url(emulator.url) as port:
            client = DeviceClient(port, profile.name, timeout_s=5.0)
            client.wait_for_boot()
            yield emulator, client


@pytest.fixture(scope="session")
def real_export(tmp_path_factory) -> Path:
    """A real BasicMotions dscnn_se network: `harness evaluate --save`, then `harness export`.

    Any failure fails the tests that use it: there is no fallback model.
    """
    root = tmp_path_factory.mktemp("basicmotions")
    # Pruned hard so the network fits the 1 MB flash of the netduinoplus2
    # (STM32F405) and one inference stays a few million instructions.
    sparsity = [f"sparsity.{layer}=0.75" for layer in [f"conv{i}" for i in range(11)] + [f"se{i}" for i in (2, 4, 6, 8, 10)]]
    _run_harness(
        "evaluate", "--dataset", "basicmotions", "--network", "dscnn_se",
        "--param", "epochs=40", *[arg for item in sparsity for arg in ("--param", item)],
        "--save", str(root / "checkpoint"), "--threads", "1", "--no-progress",
    )
    _run_harness("export", "--checkpoint", str(root / "checkpoint"), "--out", str(root / "export"))
    return root / "export"


def _run_harness(*args: str) -> None:
    completed = subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True)
    if completed.returncode != 0:
        pytest.fail(f"harness {args[0]} failed with status {completed.returncode}:\n{completed.stderr[-3000:]}")
