import dataclasses
import json

import pytest
import torch

from harness.data import load_dataset
from harness.errors import TrainingError
from harness.evaluate import evaluate_config
from harness.train import load_checkpoint

QUICK = {"epochs": 30, "batch_size": 8, "lr": 0.01, "prune_start": 0.2, "prune_end": 0.8, "prune_steps": 3}


@pytest.fixture(scope="module")
def basicmotions():
    return load_dataset("basicmotions")


def test_short_run_beats_chance(basicmotions):
    metrics = evaluate_config("basicmotions", "mobilenetv3_1d", QUICK, splits=basicmotions)
    # Four balanced classes: chance is 0.25.
    assert metrics["test_accuracy"] >= 0.6
    assert metrics["kept_channels"]["head"] < metrics["channels_before"]["head"]


def test_same_seed_same_result(basicmotions):
    first = evaluate_config("basicmotions", "mobilenetv3_1d", {**QUICK, "epochs": 3}, splits=basicmotions)
    second = evaluate_config("basicmotions", "mobilenetv3_1d", {**QUICK, "epochs": 3}, splits=basicmotions)
    assert first["final_train_loss"] == second["final_train_loss"]
    assert first["test_accuracy"] == second["test_accuracy"]


def test_sparsity_shrinks_flops(basicmotions):
    light = evaluate_config("basicmotions", "mobilenetv3_1d", {**QUICK, "epochs": 2}, splits=basicmotions)
    heavy_params = {**QUICK, "epochs": 2, **{f"sparsity.expand{i}": 0.9 for i in range(1, 7)}}
    heavy = evaluate_config("basicmotions", "mobilenetv3_1d", heavy_params, splits=basicmotions)
    assert heavy["flops"] < light["flops"]
    assert heavy["params"] < light["params"]


def test_non_finite_loss_is_reported(basicmotions):
    corrupt = dataclasses.replace(basicmotions, X_train=basicmotions.X_train.clone())
    corrupt.X_train[0, 0, 0, 0] = float("inf")
    with pytest.raises(TrainingError, match="diverged at epoch 1/3.*lower the learning rate"):
        evaluate_config("basicmotions", "mobilenetv3_1d", {**QUICK, "epochs": 3}, splits=corrupt)


def test_checkpoint_round_trip(tmp_path, basicmotions):
    metrics = evaluate_config(
        "basicmotions", "mobilenetv3_1d", {**QUICK, "epochs": 2}, splits=basicmotions, save_dir=tmp_path
    )
    model, meta = load_checkpoint(tmp_path)
    assert meta["dataset"] == "basicmotions"
    assert meta["params"]["epochs"] == 2
    assert meta["kept_channels"] == metrics["kept_channels"]
    with torch.no_grad():
        logits = model(basicmotions.X_test)
    accuracy = (logits.argmax(1) == basicmotions.y_test).float().mean().item()
    assert accuracy == pytest.approx(metrics["test_accuracy"])
    assert json.loads((tmp_path / "checkpoint.json").read_text())["params_count"] == metrics["params"]
