"""Board profiles: loading, validation errors and `harness boards`."""

from pathlib import Path

import pytest

from board_names import EMULATED_BOARDS, REAL_BOARDS
from harness.cli import main
from harness.errors import ConfigError
from harness.hil.boards import BOARDS_DIR, list_boards, load_board, parse_profile
from harness.hil.emulators import make_emulator


def test_all_profiles_load():
    names = [profile.name for profile in list_boards()]
    assert sorted(names) == sorted(EMULATED_BOARDS + REAL_BOARDS)


@pytest.mark.parametrize("name", EMULATED_BOARDS)
def test_emulated_profiles_use_qemu(name):
    profile = load_board(name)
    assert profile.emulated
    assert profile.emulator.kind == "qemu"
    assert profile.emulator.systick_hz > 0


@pytest.mark.parametrize("name", REAL_BOARDS)
def test_real_profiles_upload_with_probe(name):
    profile = load_board(name)
    assert not profile.emulated
    assert profile.upload_method in ("openocd", "pyocd")


def _write_variant(tmp_path: Path, old: str, new: str, name: str = "qemu-mps2-an386") -> Path:
    text = (BOARDS_DIR / f"{name}.toml").read_text()
    assert old in text
    path = tmp_path / f"{name}.toml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("old", "new", "field", "expected"),
    [
        ('clock_hz = 25_000_000\n', "", "clock_hz", "missing"),
        ('clock_hz = 25_000_000', 'clock_hz = "fast"', "clock_hz", "positive integer"),
        ('core = "cortex-m4"', 'core = "cortex-a53"', "core", "one of"),
        ('kind = "flash"', 'kind = "rom"', "memory[0].kind", "one of"),
        ('length = 0x00400000', 'length = -1', "memory[0].length", "positive integer"),
        ('baud = 115200', 'baud = true', "serial.baud", "positive integer"),
        ('method = "emulator"', 'method = "openocd"', "upload.method", "'emulator'"),
    ],
)
def test_invalid_field_names_file_and_field(tmp_path, old, new, field, expected):
    path = _write_variant(tmp_path, old, new)
    with pytest.raises(ConfigError) as info:
        parse_profile(path)
    message = str(info.value)
    assert str(path) in message
    assert f"'{field}'" in message
    assert expected in message


def test_profile_name_must_match_file(tmp_path):
    path = _write_variant(tmp_path, 'name = "qemu-mps2-an386"', 'name = "other"')
    with pytest.raises(ConfigError, match="file name"):
        parse_profile(path)


def test_unknown_board_lists_known(tmp_path):
    with pytest.raises(ConfigError, match="qemu-mps2-an386"):
        load_board("no-such-board")


def test_boards_command_lists_profiles(capsys):
    assert main(["boards"]) == 0
    output = capsys.readouterr().out
    for name in EMULATED_BOARDS + REAL_BOARDS:
        assert name in output


def test_renode_profile_needs_uart(tmp_path):
    path = _write_variant(tmp_path, 'kind = "qemu"', 'kind = "renode"')
    with pytest.raises(ConfigError, match="'emulator.uart' is missing"):
        parse_profile(path)


def test_renode_missing_gives_clear_error(tmp_path, monkeypatch):
    path = _write_variant(tmp_path, 'kind = "qemu"', 'kind = "renode"\nuart = "sysbus.uart0"')
    profile = parse_profile(path)
    monkeypatch.setenv("PATH", str(tmp_path))  # no renode on PATH
    with pytest.raises(ConfigError, match="renode.io"):
        make_emulator(profile, tmp_path / "firmware.elf")
