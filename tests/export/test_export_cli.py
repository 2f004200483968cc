"""`harness export` end to end: the export directory, export.json and the C interface."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from export_helpers import needs_gcc
from harness.cli import main
from harness.compress.pruning import apply_masks
from harness.models import build_network
from harness.train import finalize, save_checkpoint
from test_tflite_inputs import _converter_style_model

pytestmark = needs_gcc

EXPORT_JSON_KEYS = {
    "model_hash", "host_int8_accuracy", "gate", "ops", "input_shape", "output_shape", "input_scale",
    "input_zero_point", "output_scale", "output_zero_point", "tflm_arena_bytes", "generated_arena_bytes",
    "weight_bytes", "source_checkpoint",
}
RUNTIME_FILES = {"model.tflite", "model_data.h", "model_data.cc", "model.h", "model.c", "test_inputs.npy",
                 "reference_outputs.npy", "export.json"}


def _header_macro(header: str, name: str) -> str:
    match = re.search(rf"#define {name} (.+)", header)
    assert match, f"{name} missing from model.h"
    return match.group(1).strip()


def test_export_tflite_writes_directory(tmp_path: Path) -> None:
    model_path = tmp_path / "converter.tflite"
    model_path.write_bytes(_converter_style_model())
    out = tmp_path / "out"

    status = main(["export", "--tflite", str(model_path), "--out", str(out), "--json", str(tmp_path / "e.json")])

    assert status == 0
    assert RUNTIME_FILES <= {p.name for p in out.iterdir()}
    assert not (out / "test_labels.npy").exists()
    record = json.loads((out / "export.json").read_text())
    assert EXPORT_JSON_KEYS <= set(record)
    assert json.loads((tmp_path / "e.json").read_text()) == record
    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
    assert record["model_hash"] == digest[:16]
    header = (out / "model.h").read_text()
    assert _header_macro(header, "MODEL_HASH") == f'"{digest[:16]}"'
    assert _header_macro(header, "MODEL_INPUT_BYTES") == "64"
    assert _header_macro(header, "MODEL_OUTPUT_BYTES") == "3"
    assert int(_header_macro(header, "MODEL_ARENA_BYTES")) == record["generated_arena_bytes"]
    assert "int model_invoke(const int8_t *input, int8_t *output);" in header
    assert record["ops"] == ["CONV_2D", "AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]
    assert record["input_shape"] == [1, 8, 8, 1]
    assert record["output_zero_point"] == -128
    assert record["tflm_arena_bytes"] > record["generated_arena_bytes"] > 0
    assert record["generated_matches_tflm"] is True
    assert np.load(out / "test_inputs.npy").shape == (100, 8, 8, 1)
    assert np.load(out / "test_inputs.npy").dtype == np.int8
    assert np.load(out / "reference_outputs.npy").shape == (100, 3)
    data_header = (out / "model_data.h").read_text()
    assert f"#define MODEL_DATA_BYTES {model_path.stat().st_size}" in data_header
    assert digest in data_header
    assert "alignas(16) const unsigned char g_model_data[]" in (out / "model_data.cc").read_text()


def test_export_tflite_with_inputs_and_labels(tmp_path: Path) -> None:
    model_path = tmp_path / "dense.tflite"
    model_path.write_bytes(_converter_style_model(image=False))
    X = np.random.default_rng(0).normal(size=(30, 20)).astype(np.float32)
    labels = np.random.default_rng(1).integers(0, 3, 30)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", labels)
    out = tmp_path / "out"

    status = main(["export", "--tflite", str(model_path), "--out", str(out), "--inputs", str(tmp_path / "x.npy"),
                   "--labels", str(tmp_path / "y.npy"), "--no-arena-probe"])

    assert status == 0
    record = json.loads((out / "export.json").read_text())
    reference = np.load(out / "reference_outputs.npy")
    assert np.load(out / "test_inputs.npy").shape == (30, 20)
    assert record["host_int8_accuracy"] == pytest.approx(float(np.mean(reference.argmax(axis=1) == labels)))
    assert record["tflm_arena_bytes"] is None


def test_export_checkpoint_end_to_end(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_network("mobilenetv3_1d", (6, 1, 100), 4)
    groups = model.pruning_groups()
    kept = apply_masks(groups, {group.name: 0.5 for group in groups})
    finalize(model)
    meta = {"dataset": "basicmotions", "network": "mobilenetv3_1d", "seed": 0, "params": {},
            "input_shape": [6, 1, 100], "num_classes": 4, "kept_channels": kept, "val_accuracy": 0.0,
            "test_accuracy": 0.0, "flops": 0, "params_count": 0}
    save_checkpoint(tmp_path / "checkpoint", model.eval(), meta)
    out = tmp_path / "out"

    status = main(["export", "--checkpoint", str(tmp_path / "checkpoint"), "--out", str(out),
                   "--calibration-samples", "16", "--max-test-samples", "20", "--no-arena-probe",
                   "--min-top1-agreement", "0", "--min-logit-cosine", "-1"])

    assert status == 0
    record = json.loads((out / "export.json").read_text())
    labels = np.load(out / "test_labels.npy")
    reference = np.load(out / "reference_outputs.npy")
    assert np.load(out / "test_inputs.npy").shape == (20, 1, 100, 6)
    assert labels.dtype == np.int64
    assert labels.shape == (20,)
    assert record["host_int8_accuracy"] == pytest.approx(float(np.mean(reference.argmax(axis=1) == labels)))
    assert record["gate"]["samples"] > 0
    assert 0.0 <= record["gate"]["top1_agreement"] <= 1.0
    assert record["source_checkpoint"] == str((tmp_path / "checkpoint").resolve())
    assert "HARD_SWISH" in record["ops"]
    assert record["generated_matches_tflm"] is True


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
def test_generated_c_builds_for_cortex_m4(tmp_path: Path) -> None:
    model_path = tmp_path / "converter.tflite"
    model_path.write_bytes(_converter_style_model())
    out = tmp_path / "out"
    assert main(["export", "--tflite", str(model_path), "--out", str(out), "--no-arena-probe"]) == 0
    for source in sorted(out.glob("*.c")):
        result = subprocess.run(
            ["arm-none-eabi-gcc", "-std=c99", "-mcpu=cortex-m4", "-mthumb", "-Os", "-Wall", "-Wextra",
             "-Werror", "-pedantic", "-ffreestanding", "-c", str(source), "-I", str(out),
             "-o", str(tmp_path / (source.stem + ".o"))],
            capture_output=True, text=True, check=False,
        )
        assert result.returncode == 0, result.stderr


def test_corrupt_model_reports_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model_path = tmp_path / "cut.tflite"
    model_path.write_bytes(_converter_style_model()[:100])
    status = main(["export", "--tflite", str(model_path), "--out", str(tmp_path / "out")])
    assert status == 2
    assert "cut.tflite" in capsys.readouterr().err


def test_inputs_with_checkpoint_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["export", "--checkpoint", str(tmp_path), "--out", str(tmp_path / "out"),
                   "--inputs", str(tmp_path / "x.npy")])
    assert status == 2
    assert "--inputs" in capsys.readouterr().err
