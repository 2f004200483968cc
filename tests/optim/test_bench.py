import csv

import pytest

from harness.cli import main
from harness.optim.bench import COLUMNS, read_rows, run_benchmark, summarize
from harness.optim.problems import PROBLEMS, get_problem, passino_landscape


def test_bench_command_writes_csv_plot_summary(tmp_path):
    rc = main([
        "bench", "optimizers", "--problems", "passino", "branincurrin",
        "--strategies", "random", "ars", "--seeds", "2", "--budget", "12",
        "--option", "ars.n_directions=50", "--option", "ars.iterations=2",
        "--option", "ars.mc_samples=8", "--out", str(tmp_path),
    ])
    assert rc == 0
    with (tmp_path / "hv.csv").open() as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == COLUMNS
        rows = list(reader)
    assert len(rows) == 2 * 2 * 2 * 12
    assert (tmp_path / "hv.png").stat().st_size > 1000
    summary = (tmp_path / "summary.md").read_text()
    assert "## passino" in summary
    assert "## branincurrin" in summary
    assert "ARS-MOBO at least equal" in summary


def test_bench_resumes_without_repeating(tmp_path):
    run_benchmark(["passino"], ["random"], seeds=1, budget=5, out=tmp_path)
    first = read_rows(tmp_path / "hv.csv")
    run_benchmark(["passino"], ["random", "sobol"], seeds=1, budget=5, out=tmp_path)
    rows = read_rows(tmp_path / "hv.csv")
    assert len(rows) == 10
    assert rows[:5] == first
    table = summarize(rows)
    assert set(table["passino"]) == {"random", "sobol"}


def test_unknown_problem_and_strategy_rejected(tmp_path):
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown problem"):
        run_benchmark(["nope"], ["random"], 1, 5, tmp_path)
    with pytest.raises(ConfigError, match="unknown strategy"):
        run_benchmark(["passino"], ["nope"], 1, 5, tmp_path)


@pytest.mark.parametrize("name", PROBLEMS + ("dtlz2_d20_m4", "discbrake"))
def test_problems_evaluate_in_unit_cube(name):
    problem = get_problem(name)
    f, c = problem.evaluate([0.5] * problem.dim)
    assert f.shape == (len(problem.objectives),)
    assert c.shape == (len(problem.constraints),)


def test_passino_minimum():
    assert passino_landscape([15.0, 5.0]) == pytest.approx(-3.9865, abs=1e-3)
    assert passino_landscape([15.0, 5.0]) < passino_landscape([14.0, 5.0])


def test_nas_problem_couplings():
    from harness.optim.problems import nas_response
    from harness.space import space_for_network

    space = space_for_network("dscnn_se")
    assert get_problem("nas").dim == space.dim
    base = space.default_config()
    base.update(lr=3e-3, batch_size=64, epochs=400, momentum=0.95)
    sparse = {**base, **{k: 0.9 for k in base if k.startswith("sparsity.")}}
    dense = {**base, **{k: 0.1 for k in base if k.startswith("sparsity.")}}
    acc_s, flash_s, ram_s, flops_s = nas_response(sparse)
    acc_d, flash_d, ram_d, flops_d = nas_response(dense)
    assert flash_s < flash_d
    assert ram_s < ram_d
    assert flops_s < flops_d
    assert acc_s < acc_d  # past a point, pruning costs accuracy
    few = nas_response({**dense, "epochs": 100})[0]
    bad_lr = nas_response({**dense, "lr": 1e-5})[0]
    assert few < acc_d
    assert bad_lr < acc_d


@pytest.mark.slow
def test_reduced_benchmark_all_strategies(tmp_path):
    path = run_benchmark(
        ["branincurrin", "c2dtlz2"], ["ars", "parego", "nehvi", "turbo", "morbo", "nsga2", "random"],
        seeds=2, budget=40, out=tmp_path,
    )
    table = summarize(read_rows(path))
    assert set(table) == {"branincurrin", "c2dtlz2"}


def test_proposal_time_reports_cpu_seconds():
    from harness.optim.bench import proposal_time

    r = proposal_time("branincurrin", "ars", n=12, options={"n_directions": 50, "iterations": 2})
    assert (r["problem"], r["strategy"], r["n"], r["dim"]) == ("branincurrin", "ars", 12, 2)
    assert r["seconds"] > 0
    assert r["cpu_seconds"] > 0


def test_killed_run_keeps_rows_so_far(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main())",
         "bench", "optimizers", "--problems", "passino", "--strategies", "random",
         "--seeds", "1", "--budget", "1000000", "--out", str(tmp_path)],
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    partial = tmp_path / "partial" / "passino-random-0.csv"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        # Count whole lines only, because the file grows while it is read.
        if partial.exists() and partial.read_text().count("\n") > 20:
            break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    rows = read_rows(partial)
    assert len(rows) >= 20
    assert [r["evaluation"] for r in rows] == list(range(1, len(rows) + 1))
    assert read_rows(tmp_path / "hv.csv") == []


def test_finished_run_drops_partial_file(tmp_path):
    run_benchmark(["passino"], ["random"], seeds=1, budget=5, out=tmp_path)
    assert len(read_rows(tmp_path / "hv.csv")) == 5
    assert not (tmp_path / "partial" / "passino-random-0.csv").exists()


def test_option_for_absent_strategy_rejected(tmp_path):
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match="strategy 'ars' is not benchmarked"):
        run_benchmark(["passino"], ["random"], 1, 5, tmp_path, options={"ars": {"iterations": 3}})


def test_bad_option_fails_before_first_run(tmp_path):
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match="allowed options"):
        run_benchmark(["passino"], ["random", "ars"], 1, 5, tmp_path, options={"ars": {"bogus": 1}})
    assert read_rows(tmp_path / "hv.csv") == []


def test_jobs_below_one_rejected(tmp_path):
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match="--jobs must be at least 1"):
        run_benchmark(["passino"], ["random"], 1, 5, tmp_path, jobs=0)


def test_repeated_strategy_runs_once(tmp_path):
    run_benchmark(["passino", "passino"], ["random", "random"], 1, 5, tmp_path)
    assert len(read_rows(tmp_path / "hv.csv")) == 5


@pytest.mark.parametrize(
    ("change", "key"),
    [({"budget": 4}, "budget"), ({"n_init": 3}, "n_init"), ({"options": {"lhs": {"design_size": 7}}}, "options")],
)
def test_rerun_with_other_settings_rejected(tmp_path, change, key):
    from harness.errors import ConfigError

    settings = {"budget": 5, "n_init": 2, "options": {"lhs": {"design_size": 5}}}
    run_benchmark(["passino"], ["lhs"], 1, out=tmp_path, **settings)
    with pytest.raises(ConfigError, match=f"was run with {key}"):
        run_benchmark(["passino"], ["lhs"], 1, out=tmp_path, **{**settings, **change})
    assert len(read_rows(tmp_path / "hv.csv")) == 5


def test_empty_csv_gets_header(tmp_path):
    (tmp_path / "hv.csv").write_text("")
    run_benchmark(["passino"], ["random"], 1, 5, tmp_path)
    assert len(read_rows(tmp_path / "hv.csv")) == 5


def test_malformed_row_names_file_and_line(tmp_path):
    from harness.errors import ConfigError

    run_benchmark(["passino"], ["random"], 1, 5, tmp_path)
    path = tmp_path / "hv.csv"
    path.write_text(path.read_text() + "passino,random,1,1,0.5\n")
    with pytest.raises(ConfigError, match="line 7: malformed row"):
        read_rows(path)


def test_wrong_header_rejected(tmp_path):
    from harness.errors import ConfigError

    (tmp_path / "hv.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError, match="expected problem,strategy"):
        run_benchmark(["passino"], ["random"], 1, 5, tmp_path)


def test_rerun_drops_stale_partial_file(tmp_path):
    run_benchmark(["passino"], ["random"], 1, 5, tmp_path)
    stale = tmp_path / "partial" / "passino-random-0.csv"
    stale.write_text(",".join(COLUMNS) + "\n")
    run_benchmark(["passino"], ["random"], 1, 5, tmp_path)
    assert not stale.exists()


@pytest.mark.parametrize(
    ("items", "message"),
    [(["ars=5"], "expected STRATEGY.KEY=VALUE"), (["ars.iterations=3", "ars.iterations=5"], "given more than once")],
)
def test_option_flag_errors(items, message):
    from harness.errors import ConfigError
    from harness.optim.cli import _parse_options

    with pytest.raises(ConfigError, match=message):
        _parse_options(items)


def test_proposal_time_needs_points():
    from harness.errors import ConfigError
    from harness.optim.bench import proposal_time

    with pytest.raises(ConfigError, match="--n must be at least 1"):
        proposal_time("passino", "random", n=0)


def test_shorter_budget_keeps_old_settings(tmp_path):
    from harness.errors import ConfigError

    run_benchmark(["passino"], ["random"], 1, 5, tmp_path)
    (tmp_path / "settings.json").unlink()
    with pytest.raises(ConfigError, match="more than --budget 3"):
        run_benchmark(["passino"], ["random"], 1, 3, tmp_path)
    run_benchmark(["passino"], ["random"], 1, 5, tmp_path)
    assert len(read_rows(tmp_path / "hv.csv")) == 5
