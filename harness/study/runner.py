"""`harness run`: a resumable study stored in Optuna storage.

Storage contract (Optuna RDB storage, SQLite by default):
- `--trials N` counts finished trials: COMPLETE in Optuna, which covers
  feasible and infeasible results (an infeasible one carries constraint values
  > 0 through `trial.set_constraint`). FAIL trials do not count.
- A trial is RUNNING while a worker owns it. The worker writes its host and
  process id to the user attribute `worker`, and the current stage to `stage`.
- At start, every RUNNING trial whose worker process on this host is gone is
  marked FAIL with the reason, and its parameters are enqueued again. A
  killed study (Ctrl-C, kill -9, power loss) therefore resumes without
  losing or repeating finished trials. RUNNING trials of workers on other hosts are left
  alone, because their owner may still be alive.
- Each trial's final state is written in a `finally` block; Ctrl-C or
  SIGTERM records the running trial as FAIL ("interrupted") and enqueues its
  parameters again before the process exits.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import ConfigError, StudyError
from harness.study import interrupts
from harness.study.config import StudyConfig
from harness.study.pipeline import TrialOutcome, TrialState, constraint_limits, run_trial

log = logging.getLogger(__name__)

CONFIG_FILE = "study.json"
WAIT_FOR_OTHERS_S = 5.0
OBJECTIVE_NAMES = ("accuracy", "flash_bytes", "ram_bytes", "flops")
# Fields that define what a study optimizes; resuming with another value would
# mix incomparable trials in one study.
_IDENTITY_FIELDS = ("name", "dataset", "network", "board", "strategy", "seed", "preset", "space", "constraints",
                    "runtime", "accuracy_split", "optimize_latency", "strategy_options")
# The value an identity field had in studies saved before the field existed.
_IDENTITY_DEFAULTS = {"strategy_options": {}}


def objective_names(limits: dict[str, float]) -> list[str]:
    return [*OBJECTIVE_NAMES, *(["latency_cycles"] if "latency_cycles" in limits else [])]


def _process_start(pid: int) -> str | None:
    """Return the start time of process `pid` in clock ticks since boot, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            # The command name (field 2) may contain spaces; fields after it are plain.
            return handle.read().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return None


def _worker_id() -> str:
    """Return `host:pid:start`; the start time distinguishes a reused pid from the original worker."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_process_start(pid) or 0}"


def _worker_alive(worker: str | None) -> bool:
    if not worker:
        return False
    host, _, rest = worker.partition(":")
    if host != socket.gethostname():
        return True  # cannot tell from here; assume alive
    pid, _, start = rest.partition(":")
    try:
        current_start = _process_start(int(pid))
    except ValueError:
        return False
    if current_start is None:
        return False
    return not start or start == current_start


def check_directory(config: StudyConfig, resume: bool) -> None:
    """Check that the study directory is free or contains this same study.

    A directory whose saved study has no trial yet does not belong to it, so a
    run that failed on a bad setting before its first trial can be corrected.
    """
    directory = config.directory
    saved_path = directory / CONFIG_FILE
    if saved_path.is_file():
        try:
            saved = json.loads(saved_path.read_text())
        except json.JSONDecodeError as err:
            raise StudyError(f"{saved_path} is not valid JSON ({err}); move the directory away or fix the file") from err
        if _has_trials(saved):
            current = json.loads(json.dumps(config.as_dict(), default=str))
            for field in _IDENTITY_FIELDS:
                saved_value = saved.get(field, _IDENTITY_DEFAULTS.get(field))
                if saved_value != current.get(field):
                    raise ConfigError(
                        f"{directory} contains a study with {field}={saved_value!r}, not "
                        f"{current.get(field)!r}; use another --out directory or the same settings"
                    )
    elif resume:
        raise StudyError(f"--resume: no study in {directory} (missing {CONFIG_FILE}); start it without --resume")


def _has_trials(saved: dict) -> bool:
    import optuna

    storage = saved.get("storage") or f"sqlite:///{Path(saved['out']).resolve() / 'study.db'}"
    if storage.startswith("sqlite:///") and not Path(storage[len("sqlite:///"):]).is_file():
        return False
    try:
        return len(optuna.load_study(study_name=saved["name"], storage=storage).trials) > 0
    except KeyError:
        return False


def write_directory(config: StudyConfig) -> None:
    """Save the study's configuration beside its trials."""
    (config.directory / CONFIG_FILE).write_text(json.dumps(config.as_dict(), indent=2, default=str))


def prepare_directory(config: StudyConfig, resume: bool) -> None:
    """Check, create and claim the study directory."""
    check_directory(config, resume)
    config.directory.mkdir(parents=True, exist_ok=True)
    write_directory(config)


def make_sampler(config: StudyConfig, limits: dict[str, float]):
    """Return the Optuna sampler of the study's strategy, normalizing by the study's limits."""
    from harness.optim.sampler import StrategySampler
    from harness.optim.spec import Objective

    objectives = [Objective("accuracy", "maximize", bound=0.0, ideal=1.0, hard=False)]
    objectives += [Objective(name, "minimize", bound=limits[name], hard=True) for name in objective_names(limits)[1:]]
    return StrategySampler(
        config.strategy,
        seed=config.seed,
        n_init=config.initial_trials,
        options=config.strategy_options,
        objectives=objectives,
    )


def open_study(config: StudyConfig, limits: dict[str, float]):
    import optuna

    names = objective_names(limits)
    directions = ["maximize"] + ["minimize"] * (len(names) - 1)
    try:
        return optuna.create_study(
            study_name=config.study_name,
            storage=config.storage_url,
            directions=directions,
            sampler=make_sampler(config, limits),
            load_if_exists=True,
        )
    except ValueError as err:
        raise ConfigError(f"study storage {config.storage_url!r} cannot hold this study: {err}") from err
    except Exception as err:  # noqa: BLE001 - SQLAlchemy raises many types for a bad URL
        if type(err).__module__.startswith("sqlalchemy"):
            raise ConfigError(
                f"study storage {config.storage_url!r} cannot be opened: {err}; "
                "use an Optuna RDB URL such as sqlite:///path/study.db or postgresql://host/db"
            ) from err
        raise


def recover_stale_trials(study) -> list[int]:
    """Mark RUNNING trials of dead workers as FAIL and enqueue their parameters again.

    Returns:
        The numbers of the recovered trials.
    """
    from optuna.trial import TrialState as OptunaState

    recovered = []
    storage = study._storage
    for trial in study.get_trials(deepcopy=False, states=(OptunaState.RUNNING,)):
        worker = trial.user_attrs.get("worker")
        if _worker_alive(worker):
            continue
        stage = trial.user_attrs.get("stage", "unknown")
        reason = f"worker {worker or 'unknown'} died while the trial was RUNNING (stage {stage})"
        storage.set_trial_user_attr(trial._trial_id, "fail_reason", reason)
        storage.set_trial_user_attr(trial._trial_id, "state_label", TrialState.FAILED.value)
        storage.set_trial_state_values(trial._trial_id, OptunaState.FAIL)
        _write_failure_record(trial.user_attrs.get("trial_dir"), stage, reason)
        if trial.params:
            study.enqueue_trial(trial.params, user_attrs={"requeued_from": trial.number}, skip_if_exists=False)
        log.warning("trial %d: %s; marked failed and proposed again", trial.number, reason)
        recovered.append(trial.number)
    return recovered


def _write_failure_record(trial_dir: str | None, stage: str, reason: str) -> None:
    """Write `metrics.json` for a trial whose worker died, recording why the trial stopped."""
    if not trial_dir or not Path(trial_dir).is_dir():
        return
    record = {"state": TrialState.FAILED.value, "stage": stage, "error": reason}
    (Path(trial_dir) / "metrics.json").write_text(json.dumps(record, indent=2))


def suggest_config(trial, space) -> dict[str, Any]:
    """Ask the trial for every free parameter of `space`; add the fixed ones."""
    params: dict[str, Any] = dict(space.fixed)
    for p in space.parameters:
        if p.integer:
            params[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), log=p.log)
        else:
            params[p.name] = trial.suggest_float(p.name, p.low, p.high, log=p.log)
    return params


def normalized_front(values: np.ndarray, limits: list[float]) -> np.ndarray:
    """Map raw objectives (`n x m`: accuracy, then minimized ones) to maximized, normalized
    values: accuracy, then 1 - value / limit for each minimized objective."""
    out = np.empty_like(values, dtype=float)
    out[:, 0] = values[:, 0]
    out[:, 1:] = 1.0 - values[:, 1:] / np.asarray(limits, dtype=float)
    return out


def study_hypervolume(study, limits: dict[str, float]) -> tuple[float, float | None]:
    """Return (feasible hypervolume, best feasible accuracy) of the study's finished trials."""
    from optuna.trial import TrialState as OptunaState

    from harness.optim.hypervolume import feasible_hypervolume

    names = objective_names(limits)
    trials = [t for t in study.get_trials(deepcopy=False, states=(OptunaState.COMPLETE,)) if t.values]
    if not trials:
        return 0.0, None
    values = np.array([t.values for t in trials], dtype=float)
    feasible = np.array([bool(t.user_attrs.get("feasible")) for t in trials])
    normalized = normalized_front(values, [limits[n] for n in names[1:]])
    best = float(values[feasible, 0].max()) if feasible.any() else None
    return feasible_hypervolume(normalized, feasible), best


def _count(study, states) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def run_study(config: StudyConfig, *, resume: bool = False, progress: bool = True) -> Path:
    """Run (or resume) a study until `config.trials` trials have finished.

    Returns:
        The study directory.
    """
    import optuna
    from optuna.trial import TrialState as OptunaState

    from harness.data import load_dataset
    from harness.hil.boards import load_board

    check_directory(config, resume)
    profile = load_board(config.board)
    limits = constraint_limits(config, dict(profile.constraints))
    names = objective_names(limits)
    space = config.search_space()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config.directory.mkdir(parents=True, exist_ok=True)
    study = open_study(config, limits)
    write_directory(config)
    study.set_metric_names(names)
    recovered = recover_stale_trials(study)
    splits = load_dataset(config.dataset, seed=config.seed)
    max_failures = config.max_failures if config.max_failures is not None else max(3, config.trials)
    failures = 0
    if recovered:
        print(f"recovered trials {recovered} left RUNNING by a dead worker; proposing them again")

    while True:
        interrupts.check()
        finished = _count(study, (OptunaState.COMPLETE,))
        if finished >= config.trials:
            break
        # Trials other workers are running count toward the budget; if one of
        # them fails, the wait ends with a free slot for this worker.
        running = _count(study, (OptunaState.RUNNING,))
        if finished + running >= config.trials:
            time.sleep(WAIT_FOR_OTHERS_S)
            continue
        if failures >= max_failures:
            raise StudyError(
                f"{failures} trials failed in this run (limit {max_failures}); the reasons are in "
                f"{config.directory}/trials/*/metrics.json (`error`) and in `harness report`'s fail_reason column"
            )
        trial = study.ask()
        trial.set_user_attr("worker", _worker_id())
        trial.set_user_attr("stage", "propose")
        params = suggest_config(trial, space)
        trial_dir = config.directory / "trials" / str(trial.number)
        trial.set_user_attr("trial_dir", str(trial_dir))
        label = f"[trial {trial.number} | {finished + running + 1}/{config.trials}]"
        outcome: TrialOutcome | None = None
        bar = None

        def on_stage(detail: str, trial=trial, label=label) -> None:
            trial.set_user_attr("stage", detail)
            print(f"{label} {detail}", flush=True)

        def on_epoch(epoch: int, epochs: int, loss: float) -> None:
            nonlocal bar
            if not progress:
                return
            if bar is None:
                from tqdm import tqdm

                bar = tqdm(total=epochs, desc=f"{label} training", unit="epoch", leave=False)
            bar.set_postfix(loss=f"{loss:.3f}")
            bar.update()

        try:
            started = time.perf_counter()
            outcome = run_trial(config, profile, params, trial_dir, splits, on_stage=on_stage, on_epoch=on_epoch)
            if bar is not None:
                bar.close()
            trial.set_user_attr("wall_time_s", round(time.perf_counter() - started, 2))
            # A signal swallowed inside a library callback still ends the study here.
            if interrupts.requested():
                outcome = None
        finally:
            _record(study, trial, outcome, names, trial_dir)
        interrupts.check()
        if outcome.state is TrialState.FAILED:
            failures += 1
            print(f"{label} failed in stage {outcome.stage}: {outcome.error}", flush=True)
            continue
        hv, best = study_hypervolume(study, limits)
        objectives = outcome.objectives or {}
        print(
            f"{label} {outcome.state.value}: accuracy {objectives['accuracy']:.3f}, "
            f"flash {objectives['flash_bytes']:,.0f} B, RAM {objectives['ram_bytes']:,.0f} B, "
            f"FLOPs {objectives['flops']:,.0f} | feasible HV {hv:.4f}, best feasible accuracy "
            f"{'-' if best is None else f'{best:.3f}'}",
            flush=True,
        )
    return config.directory


def _record(study, trial, outcome: TrialOutcome | None, names: list[str], trial_dir: Path) -> None:
    """Persist the trial's final state: COMPLETE with values and constraints, or FAIL."""
    from optuna.trial import TrialState as OptunaState

    trial.set_user_attr("trial_dir", str(trial_dir))
    if outcome is None:
        # Interrupted (Ctrl-C, SIGTERM) or crashed in the harness itself: the
        # configuration was never judged, so the next run proposes it again.
        trial.set_user_attr("state_label", TrialState.FAILED.value)
        trial.set_user_attr("fail_reason", f"interrupted in stage {trial.user_attrs.get('stage', 'unknown')}")
        study.tell(trial, state=OptunaState.FAIL)
        if trial.params:
            study.enqueue_trial(trial.params, user_attrs={"requeued_from": trial.number}, skip_if_exists=False)
        return
    trial.set_user_attr("state_label", outcome.state.value)
    if outcome.state is TrialState.FAILED:
        trial.set_user_attr("fail_reason", f"{outcome.stage}: {outcome.error}")
        study.tell(trial, state=OptunaState.FAIL)
        return
    constraint_values = [outcome.constraints[k] for k in sorted(outcome.constraints)]
    trial.set_user_attr("constraint_names", sorted(outcome.constraints))
    trial.set_user_attr("constraint_values", constraint_values)
    trial.set_user_attr("feasible", outcome.state is TrialState.COMPLETE)
    trial.set_user_attr("test_accuracy_device", outcome.metrics.get("test_accuracy_device"))
    trial.set_user_attr("latency_cycles", outcome.metrics.get("latency_cycles"))
    trial.set_user_attr("sources", outcome.metrics.get("sources"))
    for key in sorted(outcome.constraints):
        trial.set_constraint(key, outcome.constraints[key])
    study.tell(trial, [outcome.objectives[n] for n in names])
