import json
import subprocess
import sys

import pytest

from harness.cli import main


def _harness(*args):
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--param", "epochs=-3"], "parameter 'epochs': value '-3' is invalid; allowed: integer in [1"),
        (["--param", "learning_rate=0.1"], "unknown parameter 'learning_rate'"),
        (["--param", "lr"], "expected KEY=VALUE"),
        (["--param", "sparsity.conv0=1.5"], "parameter 'sparsity.conv0': value '1.5' is invalid"),
        (["--dataset", "nope"], "unknown dataset 'nope'"),
        (["--dataset", "digits", "--network", "dscnn_se"], "takes 1-D series"),
        (["--param", "prune_start=0.9", "--param", "prune_end=0.5"], "prune_start=0.9 is after prune_end=0.5"),
    ],
)
def test_bad_input_gives_message_not_traceback(args, message):
    result = _harness("evaluate", "--no-progress", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_evaluate_writes_json(tmp_path, capsys):
    out = tmp_path / "metrics.json"
    code = main([
        "evaluate", "--network", "mobilenetv3_1d", "--param", "epochs=2", "--param", "batch_size=16",
        "--json", str(out), "--save", str(tmp_path / "ckpt"), "--no-progress",
    ])
    assert code == 0
    metrics = json.loads(out.read_text())
    for key in ("test_accuracy", "val_accuracy", "flops", "params", "kept_channels", "wall_time_s"):
        assert key in metrics
    assert "test_accuracy" in capsys.readouterr().out
    assert (tmp_path / "ckpt" / "model.pt").is_file()
