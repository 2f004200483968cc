import pytest

from harness.errors import ConfigError, StudyError
from harness.study.config import (
    build_config,
    load_study_file,
    parse_space_flag,
    parse_strategy_option_flag,
)
from harness.study.runner import prepare_directory


def test_toml_and_flags_merge(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(
        'dataset = "gunpoint"\nnetwork = "mobilenetv3_1d"\ntrials = 7\n'
        "[space]\nepochs = [20, 40]\nlr = [1e-4, 1e-2]\n[constraints]\nflash_bytes = 500000\n"
    )
    config = build_config(load_study_file(path), {"trials": 3, "space": {"epochs": 25.0}, "seed": None})
    assert config.dataset == "gunpoint"
    assert config.trials == 3
    assert config.space == {"epochs": 25.0, "lr": [1e-4, 1e-2]}
    assert "epochs" not in config.search_space().names
    assert config.constraints == {"flash_bytes": 500000}


def test_space_flag_forms():
    assert parse_space_flag(["epochs=20:60", "lr=0.001"]) == {"epochs": [20.0, 60.0], "lr": 0.001}
    with pytest.raises(ConfigError, match="expected KEY=LOW:HIGH"):
        parse_space_flag(["epochs"])
    with pytest.raises(ConfigError, match="not a number"):
        parse_space_flag(["epochs=a:b"])


def test_strategy_options_from_toml_and_flags(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text("[strategy_options]\niterations = 8\nlearning_rate = 0.01\n")
    flags = {"strategy_options": parse_strategy_option_flag(["iterations=6", "float64=True"])}
    config = build_config(load_study_file(path), flags)
    assert config.strategy_options == {"iterations": 6, "learning_rate": 0.01, "float64": True}


def test_strategy_option_flag_needs_key_and_value():
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_strategy_option_flag(["iterations"])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"strategy": "bayes"}, "'strategy': value 'bayes' is invalid; allowed: ars, parego"),
        ({"trials": 0}, "'trials': value 0 is invalid; allowed: integer >= 1"),
        ({"dataset": "mnist"}, "'dataset': value 'mnist' is invalid"),
        ({"space": {"lr": [0.1, 0.01]}}, "'lr': interval [0.1, 0.01] has low > high"),
        ({"constraints": {"energy": 3}}, "unknown constraint 'energy'"),
        ({"optimize_latency": True}, "needs a latency limit"),
        ({"optimize_latency": "yes"}, "'optimize_latency': value 'yes' is invalid; allowed: true or false"),
        ({"board": 3}, "'board': value 3 is invalid; allowed: a string"),
        ({"name": "../../etc"}, "without path separators"),
        ({"max_failures": -1}, "'max_failures': value -1 is invalid"),
        ({"seed": -1}, "'seed': value -1 is invalid; allowed: integer >= 0"),
        ({"constraints": {"flops": float("inf")}}, "constraint 'flops': value inf is invalid"),
        ({"constraints": {"flash_bytes": True}}, "constraint 'flash_bytes': value True is invalid"),
        ({"space": {"lr_gamma": True}}, "'lr_gamma': value True is not a number"),
        ({"space": {"prune_start": 0.9, "prune_end": 0.85}}, "pruning intervals overlap"),
        ({"space": {"prune_start": [0.5, 0.9]}}, "pruning intervals overlap"),
        ({"strategy_options": {"learning_rate": -1.0}}, "learning_rate"),
        ({"strategy_options": {"no_such_option": 1}}, "invalid option for strategy 'ars'"),
        ({"strategy_options": 3}, "'strategy_options': value 3 is invalid; allowed: a table"),
    ],
)
def test_invalid_study_fields(fields, message):
    with pytest.raises(ConfigError) as info:
        build_config(fields, {})
    assert message in str(info.value)


def test_unknown_toml_key_named(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text('datset = "basicmotions"\n')
    with pytest.raises(ConfigError, match=r"unknown keys \['datset'\]"):
        load_study_file(path)


def test_resume_without_study_rejected(tmp_path):
    config = build_config({"out": tmp_path / "none"}, {})
    with pytest.raises(StudyError, match="--resume: no study"):
        prepare_directory(config, resume=True)


def test_empty_study_directory_can_be_reused(tmp_path):
    prepare_directory(build_config({"out": tmp_path}, {}), resume=False)
    prepare_directory(build_config({"out": tmp_path, "network": "mobilenetv3_1d"}, {}), resume=False)
    assert '"network": "mobilenetv3_1d"' in (tmp_path / "study.json").read_text()


def test_corrupt_study_file_reported(tmp_path):
    (tmp_path / "study.json").write_text("{not json")
    with pytest.raises(StudyError, match="study.json is not valid JSON"):
        prepare_directory(build_config({"out": tmp_path}, {}), resume=False)


def test_sampler_gets_strategy_options():
    from harness.study.runner import make_sampler

    config = build_config({"strategy_options": {"iterations": 6}}, {})
    limits = {"flash_bytes": 1e6, "ram_bytes": 2e5, "flops": 1e9}
    assert make_sampler(config, limits).options == {"iterations": 6}


def test_strategy_option_flag_given_twice_rejected():
    with pytest.raises(ConfigError, match="given more than once"):
        parse_strategy_option_flag(["iterations=6", "iterations=8"])


def test_nested_option_value_kept_as_text():
    from harness.optim._validate import option_value

    text = "-" * 3000 + "1"
    assert option_value(text) == text
