"""`harness deploy` of a real exported BasicMotions network on every emulated board."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from board_names import EMULATED_BOARDS
from harness.cli import main
from harness.hil.boards import load_board
from harness.hil.deploy import OutputMismatchError, deploy
from harness.hil.emulators import QemuBoard
from harness.hil.protocol import DeviceClient
from harness.hil.transport import open_url
from tflm_marks import needs_tflm

JSON_KEYS = (
    "device_accuracy", "host_int8_accuracy", "latency_cycles", "latency_source", "flash_bytes",
    "ram_bytes", "model_flash_bytes", "model_ram_bytes", "elf",
)


@pytest.mark.parametrize("name", EMULATED_BOARDS)
def test_deploy_matches_host_reference(real_export, name, tmp_path, capsys):
    json_path = tmp_path / "deploy.json"
    status = main(["deploy", "--board", name, "--model", str(real_export), "--json", str(json_path), "--out", str(tmp_path / "fw")])
    assert status == 0
    record = json.loads(json_path.read_text())
    for key in JSON_KEYS:
        assert key in record
    meta = json.loads((real_export / "export.json").read_text())
    # deploy raises OutputMismatchError unless every output equals reference_outputs.npy.
    assert record["outputs_equal_reference"] is True
    assert record["samples"] == len(np.load(real_export / "test_labels.npy"))
    assert record["device_accuracy"] == pytest.approx(meta["host_int8_accuracy"], abs=1e-12)
    assert record["latency_source"] == "qemu-icount"
    assert record["latency_cycles"] > 100_000
    assert 0 < record["model_flash_bytes"] < record["flash_bytes"]
    assert record["model_flash_bytes"] >= meta["weight_bytes"]
    assert record["model_ram_bytes"] >= meta["generated_arena_bytes"]
    assert record["elf"] == str(tmp_path / "fw" / "firmware.elf")
    assert "device accuracy" in capsys.readouterr().out


@needs_tflm
def test_tflm_deploy_matches_host_reference(real_export, tmp_path):
    profile = load_board("qemu-mps2-an386")
    # deploy raises OutputMismatchError unless every output equals reference_outputs.npy.
    result = deploy(profile, real_export, "tflm", out_dir=tmp_path / "fw")
    meta = json.loads((real_export / "export.json").read_text())
    assert result.outputs_equal_reference is True
    assert result.device_accuracy == pytest.approx(meta["host_int8_accuracy"], abs=1e-12)
    assert result.latency_source == "qemu-icount"
    assert result.latency_cycles > 100_000
    # The device reports the arena it was given and the part TFLM allocated.
    assert 0 < result.arena_used_bytes <= result.arena_bytes
    assert result.arena_bytes > meta["tflm_arena_bytes"]  # the probe plus headroom
    assert 0 < result.stack_high_water_bytes < result.stack_bytes
    # The model share contains the flatbuffer and the interpreter, because
    # it is measured against the generated runtime's empty firmware.
    assert result.model_flash_bytes > meta["model_bytes"]
    assert result.model_ram_bytes >= result.arena_bytes

    with QemuBoard(profile, Path(result.elf), timeout_s=60) as emulator:
        with open_url(emulator.url) as port:
            client = DeviceClient(port, profile.name, timeout_s=5.0)
            client.wait_for_boot()
            identity = client.identify()
    assert identity.runtime == "tflm"
    assert identity.model_hash == meta["model_hash"]
    assert identity.arena_bytes == result.arena_bytes


def _partial_copy(real_export, target, keep):
    target.mkdir()
    for path in real_export.iterdir():
        if path.is_file() and (path.suffix in (".c", ".h", ".tflite", ".json") or path.name in keep):
            shutil.copy(path, target / path.name)
    return target


def test_foreign_model_uses_host_reference(real_export, tmp_path):
    # No test set, no labels, no reference outputs: random inputs, reference from the host interpreter.
    model_dir = _partial_copy(real_export, tmp_path / "foreign", keep=())
    result = deploy(load_board("qemu-mps2-an386"), model_dir)
    assert result.outputs_equal_reference is True
    assert result.device_accuracy is None
    assert result.reference_source == "tflite-micro interpreter on the host"
    assert result.latency_cycles > 0


def test_mismatch_shows_first_differing_sample(real_export, tmp_path):
    model_dir = _partial_copy(real_export, tmp_path / "tampered", keep=())
    inputs = np.load(real_export / "test_inputs.npy")[:5]
    reference = np.load(real_export / "reference_outputs.npy")[:5].copy()
    reference[3, 0] = reference[3, 0] ^ 1
    np.save(model_dir / "test_inputs.npy", inputs)
    np.save(model_dir / "reference_outputs.npy", reference)
    with pytest.raises(OutputMismatchError, match="first is sample 3"):
        deploy(load_board("qemu-mps2-an386"), model_dir)
