"""End-to-end studies on the emulated board: real training, export, firmware and QEMU."""

import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest

from harness.cli import main
from harness.study.report import load_trials

TINY = [
    "--dataset", "basicmotions", "--network", "mobilenetv3_1d", "--board", "qemu-mps2-an386",
    "--preset", "small", "--param", "epochs=2", "--param", "batch_size=8", "--no-progress",
    "--initial-trials", "3",
]


def _load(directory):
    config = json.loads((directory / "study.json").read_text())
    return optuna.load_study(study_name=config["name"], storage=f"sqlite:///{directory / 'study.db'}")


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny") / "study"
    code = main(["run", *TINY, "--trials", "4", "--out", str(directory)])
    assert code == 0
    return directory


def test_tiny_study_completes(tiny_study):
    study = _load(tiny_study)
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE"] * 4
    for trial in study.trials:
        assert trial.user_attrs["feasible"] is True
        assert 0.0 <= trial.values[0] <= 1.0
        assert all(value <= 0 for value in trial.user_attrs["constraint_values"])
    frame = study.trials_dataframe()
    assert len(frame) == 4


def test_trial_artifacts_kept(tiny_study):
    trial_dir = tiny_study / "trials" / "0"
    for relative in ("checkpoint/model.pt", "export/model.tflite", "export/model.c", "metrics.json"):
        assert (trial_dir / relative).is_file(), relative
    assert list(trial_dir.glob("firmware/**/*.elf"))
    assert list(trial_dir.glob("firmware/**/*.map"))
    metrics = json.loads((trial_dir / "metrics.json").read_text())
    assert metrics["state"] == "complete"
    assert metrics["latency_source"] == "qemu-icount"
    assert "linker map" in metrics["sources"]["flash_bytes"]
    assert metrics["sources"]["accuracy"].startswith("device, val split")


def test_report_files(tiny_study):
    out = tiny_study / "report"
    for name in ("pareto.md", "pareto.csv", "hypervolume.png", "pairs.png", "summary.md", "summary.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trials_finished"] == 4
    assert 0.0 < summary["hypervolume"] <= 1.0


def test_compare_files(tiny_study, tmp_path):
    assert main(["compare", str(tiny_study), str(tiny_study), "--out", str(tmp_path / "cmp")]) == 0
    assert (tmp_path / "cmp" / "fronts.png").is_file()
    assert "hypervolume_common" in (tmp_path / "cmp" / "hypervolume.md").read_text()


def test_rerun_adds_only_missing_trials(tiny_study):
    assert main(["run", *TINY, "--trials", "4", "--out", str(tiny_study)]) == 0
    assert len(_load(tiny_study).trials) == 4


def test_resume_after_kill(tmp_path):
    directory = tmp_path / "killed"
    command = [sys.executable, "-m", "harness.cli", "run", *TINY, "--param", "epochs=30", "--trials", "1",
               "--out", str(directory)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    for line in process.stdout:
        if "training" in line:
            break
        assert time.monotonic() < deadline, "the study never started training"
    time.sleep(1.0)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    study = _load(directory)
    assert [t.state.name for t in study.trials] == ["RUNNING"]
    killed_params = study.trials[0].params

    result = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    study = _load(directory)
    reasons = [t.user_attrs.get("fail_reason") for t in study.trials]
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE"], reasons
    assert "died while the trial was RUNNING" in study.trials[0].user_attrs["fail_reason"]
    killed_record = json.loads((directory / "trials" / "0" / "metrics.json").read_text())
    assert killed_record["state"] == "failed"
    assert "died while the trial was RUNNING" in killed_record["error"]
    assert study.trials[1].params == killed_params


def test_flash_overflow_is_infeasible(tmp_path):
    directory = tmp_path / "overflow"
    code = main([
        "run", "--dataset", "basicmotions", "--network", "dscnn_se", "--board", "qemu-netduinoplus2",
        "--preset", "small", "--param", "epochs=1", "--param", "batch_size=16",
        *[f"--param=sparsity.conv{i}=0.1" for i in range(11)], "--trials", "1", "--out", str(directory),
        "--no-progress",
    ])
    assert code == 0
    trial = _load(directory).trials[0]
    assert trial.state.name == "COMPLETE"
    assert trial.user_attrs["feasible"] is False
    metrics = json.loads((directory / "trials" / "0" / "metrics.json").read_text())
    assert metrics["state"] == "infeasible"
    assert metrics["overflows"][0]["region"] == "FLASH"
    assert metrics["overflows"][0]["overflow_bytes"] > 0
    assert trial.values[1] > 1024 * 1024
    frame, _ = load_trials(directory)
    assert frame.loc[0, "state"] == "infeasible"


def test_export_failure_recorded_and_study_goes_on(tmp_path, monkeypatch):
    import harness.export.pipeline as export_pipeline

    real_export = export_pipeline.export_checkpoint
    calls = []

    def strict_first_export(*args, **kwargs):
        # The real gate, with thresholds no int8 model meets, on the first trial only.
        calls.append(1)
        if len(calls) == 1:
            kwargs.update(min_top1_agreement=1.0, min_logit_cosine=0.999999999)
        return real_export(*args, **kwargs)

    monkeypatch.setattr(export_pipeline, "export_checkpoint", strict_first_export)
    directory = tmp_path / "export-fails"
    assert main(["run", *TINY, "--trials", "1", "--out", str(directory)]) == 0
    study = _load(directory)
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE"]
    assert study.trials[0].user_attrs["fail_reason"].startswith("export: ExportError")


def test_sigterm_records_interrupted_trial(tmp_path):
    directory = tmp_path / "terminated"
    command = [sys.executable, "-m", "harness.cli", "run", *TINY, "--param", "epochs=30", "--trials", "1",
               "--out", str(directory)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        if "training" in line:
            break
    time.sleep(1.0)
    process.terminate()
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 143, output
    study = _load(directory)
    states = [t.state.name for t in study.trials]
    assert states == ["FAIL", "WAITING"]
    assert study.trials[0].user_attrs["fail_reason"] == "interrupted in stage training"
    assert study.trials[1].system_attrs["fixed_params"] == study.trials[0].params


@pytest.mark.parametrize(
    "change", [["--network", "dscnn_se"], ["--name", "other"], ["--strategy-option", "iterations=6"]]
)
def test_other_settings_on_existing_study_rejected(tiny_study, change, capsys):
    assert main(["run", *TINY, "--trials", "4", "--out", str(tiny_study), *change]) == 2
    assert "contains a study with" in capsys.readouterr().err


def test_study_saved_before_strategy_options_reruns(tiny_study):
    path = tiny_study / "study.json"
    text = path.read_text()
    saved = json.loads(text)
    del saved["strategy_options"]
    path.write_text(json.dumps(saved))
    try:
        assert main(["run", *TINY, "--trials", "4", "--out", str(tiny_study)]) == 0
    finally:
        path.write_text(text)
