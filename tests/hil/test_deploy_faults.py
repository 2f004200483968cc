"""Deploy against emulators that fail to boot: real QEMU running faulty images."""

import subprocess

import pytest

from harness.errors import DeviceError, DeviceTimeoutError
from harness.hil import deploy as deploy_module
from harness.hil.boards import load_board
from harness.hil.build import build_firmware
from harness.hil.deploy import deploy
from harness.hil.emulators import QemuBoard

SILENT_IMAGE_S = """
    .syntax unified
    .thumb
    .text
    .word 0x20001000
    .word reset
    .thumb_func
reset:
    b reset
"""


def _emulator_running(image, started):
    """A make_emulator that starts QEMU with `image` whatever was built, recording each start."""

    def make(profile, elf_path, **kwargs):
        started.append(elf_path)
        return QemuBoard(profile, image, timeout_s=30)

    return make


def test_silent_emulator_retried_once(handmade_dir, tmp_path, monkeypatch):
    # QEMU runs an image that spins without a word on the UART. Deploy
    # tries a new emulator once, then fails naming both attempts.
    source = tmp_path / "silent.S"
    source.write_text(SILENT_IMAGE_S)
    image = tmp_path / "silent.elf"
    subprocess.run(
        ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-nostdlib", "-Wl,-Ttext=0", "-Wl,-ereset",
         str(source), "-o", str(image)],
        check=True,
    )
    started = []
    monkeypatch.setattr(deploy_module, "BOOT_TIMEOUT_S", 1.0)
    monkeypatch.setattr(deploy_module, "make_emulator", _emulator_running(image, started))
    with pytest.raises(DeviceTimeoutError, match="in a new emulator again") as info:
        deploy(load_board("qemu-mps2-an386"), handmade_dir)
    assert len(started) == 2
    assert "running" in str(info.value)


def test_emulator_exit_is_device_error(handmade_dir, tmp_path, monkeypatch):
    # The STM32F7 image locks up on the MPS2 machine and QEMU aborts,
    # closing the socket while deploy waits for the boot announcement.
    image = build_firmware(load_board("nucleo-f746zg"), handmade_dir, out_dir=tmp_path / "f7").elf_path
    monkeypatch.setattr(deploy_module, "make_emulator", _emulator_running(image, []))
    with pytest.raises(DeviceError, match="serial link failed"):
        deploy(load_board("qemu-mps2-an386"), handmade_dir)
