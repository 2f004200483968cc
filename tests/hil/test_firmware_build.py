"""Firmware builds: every profile, memory accounting, incremental builds, overflow."""

import json
import os
import shutil

import pytest

from board_names import EMULATED_BOARDS, REAL_BOARDS
from handmade_model import write_handmade_model
from tflm_marks import needs_tflm
from harness.errors import ConfigError
from harness.hil import build as build_module
from harness.hil.boards import load_board
from harness.hil.build import build_firmware, check_runtime, upload_firmware
from harness.hil.deploy import deploy
from harness.hil.memory import parse_overflows, run_size


@pytest.fixture(scope="module")
def builds(handmade_dir, tmp_path_factory):
    firmware_dir = tmp_path_factory.mktemp("firmware")
    return {
        name: build_firmware(load_board(name), handmade_dir, out_dir=firmware_dir / name)
        for name in EMULATED_BOARDS + REAL_BOARDS
    }


@pytest.mark.parametrize("name", EMULATED_BOARDS + REAL_BOARDS)
def test_map_memory_equals_arm_size(builds, name):
    build = builds[name]
    text, data, bss = run_size(build.elf_path)
    assert build.memory.flash_bytes == text + data
    assert build.memory.ram_bytes == data + bss
    regions = {region.name: region for region in build.memory.regions}
    assert ".text" in regions["FLASH"].sections
    assert ".stack" in regions["RAM"].sections
    assert regions["FLASH"].used_bytes == text + data


@pytest.mark.parametrize("name", EMULATED_BOARDS + REAL_BOARDS)
def test_model_weights_counted_in_flash(builds, name):
    # The handmade model has 4 x 1536 int8 weights in .rodata.
    assert builds[name].memory.flash_bytes > 4 * 1536


def test_new_model_recompiles_only_model_units(an386_build, tmp_path):
    profile, _ = an386_build
    other = write_handmade_model(tmp_path / "other", seed=1)
    result = build_firmware(profile, other)
    compiled = sorted(os.path.basename(os.path.dirname(path)) + "/" + os.path.basename(path) for path in result.compiled)
    assert compiled == ["model/model.o", "runtime/runtime.o"]
    assert not any("/src/" in path for path in result.compiled)


def test_flash_overflow_is_a_record(tmp_path):
    profile = load_board("qemu-netduinoplus2")
    fitting = build_firmware(profile, write_handmade_model(tmp_path / "fits"))
    padding = 1_200_000
    result = build_firmware(profile, write_handmade_model(tmp_path / "big", padding_bytes=padding))
    assert not result.fits
    assert result.elf_path is None
    assert [overflow.region for overflow in result.overflows] == ["FLASH"]
    expected = fitting.memory.flash_bytes + padding - profile.region("flash").length
    # The padded model also has a pointer to the padding and the code that
    # reads it, and the linker aligns sections: allow 128 bytes for those.
    assert expected <= result.overflows[0].overflow_bytes <= expected + 128


def test_ram_overflow_is_a_record(tmp_path):
    profile = load_board("qemu-netduinoplus2")
    arena = 200_000  # the STM32F405 has 128 KB of RAM for the linker
    result = build_firmware(profile, write_handmade_model(tmp_path / "big-arena", arena_bytes=arena))
    assert [overflow.region for overflow in result.overflows] == ["RAM"]
    assert result.overflows[0].overflow_bytes > arena - profile.region("ram").length


def test_deploy_reports_overflow_as_infeasible(tmp_path):
    profile = load_board("qemu-netduinoplus2")
    model_dir = write_handmade_model(tmp_path / "big", padding_bytes=1_200_000)
    result = deploy(profile, model_dir)
    assert result.feasible is False
    assert result.overflows[0]["region"] == "FLASH"
    assert result.overflows[0]["overflow_bytes"] > 0
    assert result.latency_cycles is None


def test_parse_overflows_takes_each_region():
    log = (
        "ld: firmware.elf section `.rodata' will not fit in region `FLASH'\n"
        "ld: region `FLASH' overflowed by 151552 bytes\n"
        "ld: region `RAM' overflowed by 24 bytes\n"
    )
    overflows = {o.region: o.overflow_bytes for o in parse_overflows(log)}
    assert overflows == {"FLASH": 151552, "RAM": 24}


def test_fresh_platformio_core_builds_offline(handmade_dir, tmp_path, monkeypatch):
    # An empty home and core directory: the build must create what it needs
    # from committed files and download nothing.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(build_module, "CORE_DIR", tmp_path / "core")
    result = build_firmware(load_board("qemu-mps2-an386"), handmade_dir, variant="fresh-core")
    assert result.fits
    assert (tmp_path / "core" / "packages" / "tool-scons" / "scons.py").is_file()
    assert not (tmp_path / "home" / ".platformio").exists()


def test_tflm_without_sources_says_how(handmade_dir, monkeypatch):
    monkeypatch.delenv("TFLM_ROOT", raising=False)
    with pytest.raises(ConfigError, match="TFLM_ROOT"):
        check_runtime("tflm", handmade_dir)


def test_tflm_plain_checkout_says_how(handmade_dir, tmp_path, monkeypatch):
    # A tflite-micro checkout without create_tflm_tree.py's third-party headers.
    (tmp_path / "tensorflow" / "lite" / "micro").mkdir(parents=True)
    monkeypatch.setenv("TFLM_ROOT", str(tmp_path))
    with pytest.raises(ConfigError, match="third_party/flatbuffers/include"):
        check_runtime("tflm", handmade_dir)


@needs_tflm
def test_tflm_build(real_export, tmp_path):
    profile = load_board("qemu-mps2-an386")
    first = build_firmware(profile, real_export, "tflm")
    assert first.fits
    # Another model: other bytes in the C array and another arena size.
    other = tmp_path / "other"
    shutil.copytree(real_export, other, ignore=shutil.ignore_patterns("deploy"))
    with open(other / "model_data.cc", "a") as model_data:
        model_data.write("/* another model */\n")
    meta = json.loads((other / "export.json").read_text())
    meta["tflm_arena_bytes"] += 64
    (other / "export.json").write_text(json.dumps(meta))
    result = build_firmware(profile, other, "tflm")
    compiled = sorted(os.path.basename(os.path.dirname(path)) + "/" + os.path.basename(path) for path in result.compiled)
    # The TFLM library and the interpreter glue (runtime/runtime.o) stay.
    assert compiled == ["model/model_data.o", "model_info/model_info.o"]


def test_tflm_without_arena_probe_says_how(real_export, tmp_path, monkeypatch):
    monkeypatch.setenv("TFLM_ROOT", str(tmp_path / "tflm"))
    (tmp_path / "tflm" / "tensorflow" / "lite" / "micro").mkdir(parents=True)
    (tmp_path / "tflm" / "third_party" / "flatbuffers" / "include").mkdir(parents=True)
    model_dir = tmp_path / "no-probe"
    shutil.copytree(real_export, model_dir, ignore=shutil.ignore_patterns("deploy"))
    meta = json.loads((model_dir / "export.json").read_text())
    meta["tflm_arena_bytes"] = None
    (model_dir / "export.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="--no-arena-probe"):
        check_runtime("tflm", model_dir)


def test_upload_without_tool_says_how(handmade_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # neither openocd nor pyocd on PATH
    with pytest.raises(ConfigError, match="apt-get install openocd"):
        upload_firmware(load_board("nucleo-f746zg"), handmade_dir)
    with pytest.raises(ConfigError, match="pip install pyocd"):
        upload_firmware(load_board("nrf52840dk"), handmade_dir)
