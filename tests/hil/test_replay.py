"""Model rebuilds replayed from the commands PlatformIO recorded (harness.hil.replay)."""

import json
import shutil
import subprocess

import pytest

from handmade_model import write_handmade_model
from harness.errors import BuildError
from harness.hil.boards import load_board
from harness.hil.build import build_dir_for, build_firmware, firmware_fingerprint
from harness.hil.replay import _dependency_digest, _read_dependencies, replay_build, write_stamp

PROFILE = load_board("qemu-mps2-an386")
HELPER_C = "int helper_value(void) { return %d; }\n"


def _fresh(variant):
    shutil.rmtree(build_dir_for(PROFILE, "generated", variant), ignore_errors=True)
    return variant


def _image(elf, tmp_path, name):
    out = tmp_path / f"{name}.bin"
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", str(elf), str(out)], check=True)
    return out.read_bytes()


def _model(path, seed, helper=1):
    model_dir = write_handmade_model(path, seed=seed)
    (model_dir / "helper.c").write_text(HELPER_C % helper)
    return model_dir


def test_replay_image_equals_platformio(tmp_path):
    variant = _fresh("test-replay")
    first = build_firmware(PROFILE, _model(tmp_path / "a", seed=0), variant=variant)
    assert first.method == "platformio"

    other = _model(tmp_path / "b", seed=1)
    replayed = build_firmware(PROFILE, other, variant=variant, out_dir=tmp_path / "replayed")
    assert replayed.method == "replay"
    reference = build_firmware(PROFILE, other, variant=_fresh("test-replay-reference"))
    assert reference.method == "platformio"

    assert _image(replayed.elf_path, tmp_path, "replayed") == _image(reference.elf_path, tmp_path, "reference")
    assert replayed.memory.flash_bytes == reference.memory.flash_bytes
    assert replayed.memory.ram_bytes == reference.memory.ram_bytes


def test_replay_keeps_unchanged_objects(tmp_path):
    variant = _fresh("test-replay-objects")
    build_firmware(PROFILE, _model(tmp_path / "a", seed=0), variant=variant)
    second = build_firmware(PROFILE, _model(tmp_path / "b", seed=1), variant=variant)
    assert sorted(second.compiled) == ["model/helper.o", "model/model.o", "runtime/runtime.o"]

    # helper.c is the same file in another directory: its object is kept.
    third = build_firmware(PROFILE, _model(tmp_path / "c", seed=2), variant=variant)
    assert third.method == "replay"
    assert sorted(third.compiled) == ["model/model.o", "runtime/runtime.o"]

    # Same model.c as before but a changed helper.c: only the helper compiles.
    changed = tmp_path / "d"
    shutil.copytree(tmp_path / "c", changed)
    (changed / "helper.c").write_text(HELPER_C % 7)
    fourth = build_firmware(PROFILE, changed, variant=variant)
    assert sorted(fourth.compiled) == ["model/helper.o"]


def test_replay_declines_stale_recipe(tmp_path):
    variant = _fresh("test-replay-declines")
    build_firmware(PROFILE, _model(tmp_path / "a", seed=0), variant=variant)
    env_dir = build_dir_for(PROFILE, "generated", variant) / PROFILE.pio_env
    fingerprint = firmware_fingerprint(PROFILE)
    other = _model(tmp_path / "b", seed=1)

    # Firmware sources changed since the recorded build.
    assert replay_build(env_dir, other, "0" * 64, "") is None
    # Another set of model sources.
    (other / "extra.c").write_text("int extra_value;\n")
    assert replay_build(env_dir, other, fingerprint, "") is None
    (other / "extra.c").unlink()
    # Other tensor shapes (compiled into model_shape.h by the builder).
    meta = json.loads((other / "export.json").read_text())
    meta["input_shape"] = [1, 1, 128, 12]
    (other / "export.json").write_text(json.dumps(meta))
    assert replay_build(env_dir, other, fingerprint, "") is None
    assert build_firmware(PROFILE, other, variant=variant).method == "platformio"


def test_replay_compile_error_reported(tmp_path):
    variant = _fresh("test-replay-error")
    build_firmware(PROFILE, _model(tmp_path / "a", seed=0), variant=variant)
    broken = _model(tmp_path / "b", seed=1)
    (broken / "helper.c").write_text("int helper_value(void) { return undefined_name; }\n")
    with pytest.raises(BuildError, match="undefined_name"):
        build_firmware(PROFILE, broken, variant=variant)


def test_replay_overflow_is_record(tmp_path):
    profile = load_board("qemu-netduinoplus2")
    variant = "test-replay-overflow"
    shutil.rmtree(build_dir_for(profile, "generated", variant), ignore_errors=True)
    build_firmware(profile, write_handmade_model(tmp_path / "fits"), variant=variant)
    result = build_firmware(profile, write_handmade_model(tmp_path / "big", padding_bytes=1_200_000), variant=variant)
    assert result.method == "replay"
    assert [overflow.region for overflow in result.overflows] == ["FLASH"]
    assert result.elf_path is None


def test_replay_drops_objects_of_other_firmware(tmp_path):
    variant = _fresh("test-replay-firmware")
    build_firmware(PROFILE, _model(tmp_path / "a", seed=0), variant=variant)
    build_firmware(PROFILE, _model(tmp_path / "b", seed=1), variant=variant)
    env_dir = build_dir_for(PROFILE, "generated", variant) / PROFILE.pio_env
    # A stamp for another firmware: a header outside the export may have
    # changed, so no replayed object may be reused.
    write_stamp(env_dir, "f" * 64, "")
    outcome = replay_build(env_dir, _model(tmp_path / "c", seed=2), "f" * 64, "")
    assert sorted(outcome.compiled) == ["model/helper.o", "model/model.o", "runtime/runtime.o"]


def test_dependencies_resolve_against_compiler_cwd(tmp_path):
    cwd = tmp_path / "project"
    (cwd / "include").mkdir(parents=True)
    header = cwd / "include" / "board.h"
    header.write_text("#define A 1\n")
    model_dir = tmp_path / "my export"
    model_dir.mkdir()
    (model_dir / "model.c").write_text("int a;\n")
    escaped = str(model_dir).replace(" ", "\\ ")
    dep_file = tmp_path / "model.d"
    dep_file.write_text(f"model.o: {escaped}/model.c \\\n include/board.h\n")

    names = _read_dependencies(dep_file, model_dir)
    assert names == ["<model>/model.c", "include/board.h"]
    before = _dependency_digest(names, model_dir, cwd)
    header.write_text("#define A 2\n")
    assert _dependency_digest(names, model_dir, cwd) != before
    header.unlink()
    assert _dependency_digest(names, model_dir, cwd) is None
