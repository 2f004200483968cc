"""Reports of finished studies: Pareto front, hypervolume, scatter plots, comparisons.

Hypervolume everywhere is the one definition of the harness: objectives
mapped to (accuracy, 1 - flash / limit, 1 - RAM / limit, 1 - FLOPs / limit),
all maximized, feasible trials only, reference point at the origin.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd

from harness.errors import StudyError

ACCURACY_THRESHOLD = 0.7


def load_trials(study_dir: Path) -> tuple[pd.DataFrame, dict]:
    """Load a study's trials as a table (one row per trial) and its saved configuration.

    Raises:
        StudyError: the directory contains no study.
    """
    import optuna

    from harness.study.runner import CONFIG_FILE

    study_dir = Path(study_dir)
    config_path = study_dir / CONFIG_FILE
    if not config_path.is_file():
        raise StudyError(f"{study_dir} is not a study directory: {CONFIG_FILE} is missing")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as err:
        raise StudyError(f"{config_path} is not valid JSON ({err}); the study directory is damaged") from err
    if not isinstance(config, dict) or "name" not in config or "board" not in config:
        raise StudyError(f"{config_path} is not a harness study configuration (no name or board)")
    storage = config.get("storage") or f"sqlite:///{(study_dir / 'study.db').resolve()}"
    if storage.startswith("sqlite:///") and not Path(storage[len("sqlite:///"):]).is_file():
        raise StudyError(f"{study_dir}: the study database {storage[len('sqlite:///'):]} is missing")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=config["name"], storage=storage)
    except KeyError as err:
        raise StudyError(f"{study_dir}: study {config['name']!r} not found in {storage}") from err
    names = study.metric_names or ["accuracy", "flash_bytes", "ram_bytes", "flops"]
    rows = []
    for trial in study.get_trials(deepcopy=False):
        row = {
            "number": trial.number,
            "state": trial.user_attrs.get("state_label", trial.state.name.lower()),
            "optuna_state": trial.state.name,
            "feasible": bool(trial.user_attrs.get("feasible", False)),
            "test_accuracy_device": trial.user_attrs.get("test_accuracy_device"),
            "latency_cycles": trial.user_attrs.get("latency_cycles"),
            "fail_reason": trial.user_attrs.get("fail_reason"),
        }
        for index, name in enumerate(names):
            row[name] = trial.values[index] if trial.values else np.nan
        rows.append(row)
    columns = ["number", "state", "optuna_state", "feasible", "test_accuracy_device", "latency_cycles",
               "fail_reason", *names]
    frame = pd.DataFrame(rows, columns=columns)
    config["metric_names"] = list(names)
    config["directory"] = str(study_dir)
    return frame, config


def _limits(config: dict) -> dict[str, float]:
    from harness.hil.boards import load_board
    from harness.study.config import StudyConfig
    from harness.study.pipeline import constraint_limits

    fields = {k: v for k, v in config.items() if k in StudyConfig.__dataclass_fields__}
    fields["out"] = Path(fields["out"]) if fields.get("out") else None
    study_config = StudyConfig(**fields)
    return constraint_limits(study_config, dict(load_board(study_config.board).constraints))


def normalized(frame: pd.DataFrame, limits: dict[str, float], names: list[str]) -> np.ndarray:
    """Return `n x m` maximized, normalized objectives of the rows of `frame`."""
    values = frame[names].to_numpy(dtype=float)
    out = values.copy()
    for column, name in enumerate(names[1:], start=1):
        out[:, column] = 1.0 - values[:, column] / limits[name]
    return out


def hypervolume_curve(frame: pd.DataFrame, limits: dict[str, float], names: list[str]) -> pd.DataFrame:
    """Feasible hypervolume after each finished trial, in trial-number order."""
    from harness.optim.hypervolume import feasible_hypervolume

    finished = frame[frame["optuna_state"] == "COMPLETE"].sort_values("number")
    points = normalized(finished, limits, names)
    feasible = finished["feasible"].to_numpy(dtype=bool)
    curve = [
        {"trial": int(number), "finished": i + 1, "hypervolume": feasible_hypervolume(points[: i + 1], feasible[: i + 1])}
        for i, number in enumerate(finished["number"])
    ]
    return pd.DataFrame(curve, columns=["trial", "finished", "hypervolume"])


def pareto_front(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Feasible, non-dominated trials (accuracy maximized, the rest minimized)."""
    from harness.optim.hypervolume import pareto_mask

    feasible = frame[(frame["optuna_state"] == "COMPLETE") & frame["feasible"]]
    if feasible.empty:
        return feasible
    signs = np.array([1.0] + [-1.0] * (len(names) - 1))
    mask = pareto_mask(feasible[names].to_numpy(dtype=float) * signs)
    return feasible[mask].sort_values("accuracy", ascending=False)


def summary(frame: pd.DataFrame, curve: pd.DataFrame, names: list[str], threshold: float) -> dict:
    """Paper-style results: hypervolume, best accuracy, smallest resources reaching `threshold`."""
    feasible = frame[(frame["optuna_state"] == "COMPLETE") & frame["feasible"]]
    good = feasible[feasible["accuracy"] >= threshold]
    result = {
        "trials_finished": int((frame["optuna_state"] == "COMPLETE").sum()),
        "trials_feasible": int(len(feasible)),
        "trials_infeasible": int(((frame["optuna_state"] == "COMPLETE") & ~frame["feasible"]).sum()),
        "trials_failed": int((frame["optuna_state"] == "FAIL").sum()),
        "hypervolume": float(curve["hypervolume"].iloc[-1]) if len(curve) else 0.0,
        "max_accuracy": float(feasible["accuracy"].max()) if len(feasible) else None,
        "accuracy_threshold": threshold,
    }
    for name in names[1:]:
        result[f"min_{name}_at_threshold"] = float(good[name].min()) if len(good) else None
    return result


def _markdown_table(frame: pd.DataFrame) -> str:
    columns = list(frame.columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in frame.iterrows():
        cells = []
        for value in row:
            if isinstance(value, float) and value.is_integer() and abs(value) >= 1000:
                cells.append(f"{int(value):,}")
            elif isinstance(value, float):
                cells.append(f"{value:.4g}")
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(study_dir: Path, threshold: float = ACCURACY_THRESHOLD) -> Path:
    """Write `<study_dir>/report/`: pareto.md/.csv, hypervolume.png, pairs.png, summary.md/.json."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not 0.0 <= threshold <= 1.0:
        raise StudyError(f"accuracy threshold {threshold!r} is invalid; allowed: a number in [0, 1]")
    frame, config = load_trials(study_dir)
    if frame.empty:
        raise StudyError(f"{study_dir}: the study has no trials yet")
    names = config["metric_names"]
    limits = _limits(config)
    out = Path(study_dir) / "report"
    out.mkdir(exist_ok=True)

    front = pareto_front(frame, names)
    front_columns = ["number", *names, "test_accuracy_device", "latency_cycles"]
    front[front_columns].to_csv(out / "pareto.csv", index=False)
    (out / "pareto.md").write_text(
        f"# Feasible Pareto front: {config['name']}\n\n"
        f"Accuracy: device, {config.get('accuracy_split', 'val')} split; flash and RAM: linker map "
        f"of the firmware for {config['board']}; FLOPs: analytic count.\n\n"
        + (_markdown_table(front[front_columns]) if len(front) else "No feasible trial yet.")
        + "\n"
    )

    curve = hypervolume_curve(frame, limits, names)
    curve.to_csv(out / "hypervolume.csv", index=False)
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.step(curve["finished"], curve["hypervolume"], where="post")
    axis.set_xlabel("finished trials")
    axis.set_ylabel("feasible hypervolume (normalized, ref. origin)")
    axis.set_title(config["name"], fontsize=9)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out / "hypervolume.png", dpi=120)
    plt.close(figure)

    _pairs_plot(frame, front, names, limits, out / "pairs.png", config["name"])

    result = summary(frame, curve, names, threshold)
    result["split_note"] = (
        "accuracy optimized on the TEST split (reproduction of published tables)"
        if config.get("accuracy_split") == "test"
        else "accuracy optimized on the validation split; test accuracy reported only"
    )
    (out / "summary.json").write_text(json.dumps(result, indent=2))
    lines = [f"# Summary: {config['name']}", "", result["split_note"], "", "| metric | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in result.items() if key != "split_note"]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    return out


def _pairs_plot(frame, front, names, limits, path: Path, title: str) -> None:
    import matplotlib.pyplot as plt

    finished = frame[frame["optuna_state"] == "COMPLETE"]
    pairs = list(itertools.combinations(names, 2))
    columns = 3
    rows = int(np.ceil(len(pairs) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.3 * rows), squeeze=False)
    for axis, (x_name, y_name) in zip(axes.flat, pairs):
        feasible = finished[finished["feasible"]]
        infeasible = finished[~finished["feasible"]]
        axis.scatter(infeasible[x_name], infeasible[y_name], s=12, c="lightgrey", label="infeasible")
        axis.scatter(feasible[x_name], feasible[y_name], s=14, c="tab:blue", label="feasible")
        axis.scatter(front[x_name], front[y_name], s=30, facecolors="none", edgecolors="tab:red", label="Pareto front")
        for name, line in ((x_name, axis.axvline), (y_name, axis.axhline)):
            if name in limits:
                line(limits[name], color="tab:red", linestyle=":", linewidth=1)
        axis.set_xlabel(x_name)
        axis.set_ylabel(y_name)
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(pairs):]:
        axis.axis("off")
    axes.flat[0].legend(fontsize=7)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def compare_studies(study_dirs: list[Path], out: Path) -> Path:
    """Overlay the fronts of several studies and tabulate their hypervolumes on common limits.

    Every study is normalized by the same limits, the largest limit of each
    objective over the studies, so their hypervolumes share one reference.
    Feasibility stays each study's own.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from harness.optim.hypervolume import feasible_hypervolume

    if len(study_dirs) < 1:
        raise StudyError("compare needs at least one study directory")
    loaded = [(Path(d), *load_trials(Path(d))) for d in study_dirs]
    names = loaded[0][2]["metric_names"]
    for directory, _, config in loaded[1:]:
        if config["metric_names"] != names:
            raise StudyError(f"{directory} has objectives {config['metric_names']}, not {names}")
    all_limits = [_limits(config) for _, _, config in loaded]
    common = {name: max(limits[name] for limits in all_limits) for name in names[1:]}
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StudyError(f"cannot create the comparison directory {out}: {err.strerror}") from err

    rows = []
    figure, axes = plt.subplots(1, len(names) - 1, figsize=(4.5 * (len(names) - 1), 3.8), squeeze=False)
    for directory, frame, config in loaded:
        finished = frame[frame["optuna_state"] == "COMPLETE"]
        points = normalized(finished, common, names) if len(finished) else np.zeros((0, len(names)))
        feasible = finished["feasible"].to_numpy(dtype=bool)
        front = pareto_front(frame, names)
        rows.append({
            "study": config["name"],
            "directory": str(directory),
            "board": config["board"],
            "strategy": config["strategy"],
            "finished": len(finished),
            "feasible": int(feasible.sum()),
            "hypervolume_common": feasible_hypervolume(points, feasible) if len(finished) else 0.0,
            "max_accuracy": float(finished[feasible]["accuracy"].max()) if feasible.any() else None,
        })
        label = f"{config['name']} ({directory.name})" if directory.name != config["name"] else config["name"]
        for axis, name in zip(axes.flat, names[1:]):
            ordered = front.sort_values(name)
            axis.step(ordered[name], ordered["accuracy"], where="post", marker="o", markersize=3, label=label)
    for axis, name in zip(axes.flat, names[1:]):
        axis.set_xlabel(name)
        axis.set_ylabel("accuracy")
        axis.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out / "fronts.png", dpi=110)
    plt.close(figure)

    table = pd.DataFrame(rows)
    table.to_csv(out / "hypervolume.csv", index=False)
    limits_text = ", ".join(f"{k} {v:,.0f}" for k, v in common.items())
    (out / "hypervolume.md").write_text(
        "# Hypervolume on common limits\n\n"
        f"Normalized by {limits_text}; reference point at the origin; feasible trials only.\n\n"
        + _markdown_table(table)
        + "\n"
    )
    return out
