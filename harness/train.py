"""Training with automated gradual filter pruning, and the checkpoint format.

SGD with momentum and weight decay; the learning rate decays exponentially,
by a factor `lr_gamma` every `lr_step * epochs` epochs (applied smoothly per
epoch). Pruning masks follow the cubic schedule of `harness.compress.pruning`.
Runs are seeded and deterministic on the CPU: the same configuration and seed
give the same weights.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.compress.groups import Prunable
from harness.compress.pruning import apply_masks, pruning_schedule, remove_pruned_channels
from harness.data import DatasetSplits
from harness.errors import ConfigError, TrainingError
from harness.space import SPARSITY_PREFIX

log = logging.getLogger(__name__)

# Called after each epoch with (epoch index from 0, total epochs, mean training loss).
EpochCallback = Callable[[int, int, float], None]

CHECKPOINT_MODEL = "model.pt"
CHECKPOINT_META = "checkpoint.json"


@dataclasses.dataclass
class TrainResult:
    """Training output: the masked network, per-epoch losses and channels kept."""

    model: Prunable
    losses: list[float]
    kept_channels: dict[str, int]
    wall_time_s: float


@contextlib.contextmanager
def deterministic(seed: int) -> Iterator[None]:
    """Seed torch and switch on deterministic algorithms for the duration of the block."""
    previous = torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Shuffle `n` indices into batches; a trailing batch of one sample joins the previous
    one, because batch norm cannot compute statistics over a single sample."""
    chunks = list(torch.randperm(n, generator=generator).split(batch_size))
    if len(chunks) > 1 and len(chunks[-1]) == 1:
        chunks[-2] = torch.cat([chunks[-2], chunks.pop()])
    return chunks


def sparsities_from_config(config: Mapping[str, Any]) -> dict[str, float]:
    """Return the final sparsity of every pruning group named in `config`."""
    return {
        key[len(SPARSITY_PREFIX):]: float(value)
        for key, value in config.items()
        if key.startswith(SPARSITY_PREFIX)
    }


def train(
    model: Prunable,
    splits: DatasetSplits,
    config: Mapping[str, Any],
    *,
    seed: int = 0,
    on_epoch: EpochCallback | None = None,
    progress: bool = False,
) -> TrainResult:
    """Train `model` on `splits.X_train` with gradual filter pruning (masks only).

    Args:
        model: a freshly built network.
        splits: the dataset; only the training split is used.
        config: a complete configuration (see `harness.space`).
        seed: seeds weights initialization order, shuffling and everything random.
        on_epoch: called after every epoch.
        progress: show a progress bar over epochs on stderr.

    Raises:
        TrainingError: the loss became NaN or infinite.
    """
    epochs = int(config["epochs"])
    batch_size = int(config["batch_size"])
    if float(config["prune_start"]) > float(config["prune_end"]):
        raise ConfigError(
            f"prune_start={config['prune_start']} is after prune_end={config['prune_end']}; "
            "prune_start must be <= prune_end"
        )
    groups = model.pruning_groups()
    final = sparsities_from_config(config)
    unknown = sorted(set(final) - {g.name for g in groups})
    if unknown:
        raise ConfigError(f"sparsity given for unknown layers {unknown}; layers: {[g.name for g in groups]}")
    schedule = {step.epoch: step for step in pruning_schedule(
        epochs, float(config["prune_start"]), float(config["prune_end"]), int(config["prune_steps"])
    )}

    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=float(config["lr"]),
        momentum=float(config["momentum"]),
        weight_decay=float(config["weight_decay"]),
    )
    decay_epochs = max(1.0, float(config["lr_step"]) * epochs)
    gamma = float(config["lr_gamma"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: gamma ** (e / decay_epochs))
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    X, y = splits.X_train, splits.y_train
    losses: list[float] = []
    kept = {g.name: g.channels for g in groups}
    started = time.perf_counter()

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=epochs, desc="training", unit="epoch", leave=False)
    try:
        for epoch in range(epochs):
            if epoch in schedule:
                fraction = schedule[epoch].fraction
                with torch.no_grad():
                    kept = apply_masks(groups, {k: v * fraction for k, v in final.items()})
                log.debug("epoch %d: pruning step %d, kept %s", epoch, schedule[epoch].step, kept)
            model.train()
            total, count = 0.0, 0
            for index in _batches(len(y), batch_size, generator):
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(X[index]), y[index])
                loss.backward()
                optimizer.step()
                total += loss.item() * len(index)
                count += len(index)
            mean_loss = total / count
            if not math.isfinite(mean_loss):
                raise TrainingError(
                    f"training diverged at epoch {epoch + 1}/{epochs}: loss is {mean_loss} "
                    f"(lr={config['lr']}, momentum={config['momentum']}); lower the learning rate"
                )
            losses.append(mean_loss)
            scheduler.step()
            if bar is not None:
                bar.set_postfix(loss=f"{mean_loss:.3f}")
                bar.update()
            if on_epoch is not None:
                on_epoch(epoch, epochs, mean_loss)
    finally:
        if bar is not None:
            bar.close()
    return TrainResult(model, losses, kept, time.perf_counter() - started)


@torch.no_grad()
def predict(model: nn.Module, X: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Return the logits of `model` on `X` (`n x C x H x W`), shape `n x classes`."""
    model.eval()
    return torch.cat([model(X[i : i + batch_size]) for i in range(0, len(X), batch_size)])


def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    """Return top-1 accuracy of `model` on `X`, `y` (a fraction in [0, 1])."""
    if len(y) == 0:
        raise ConfigError("cannot compute accuracy on an empty split")
    return float((predict(model, X).argmax(dim=1) == y).float().mean().item())


def finalize(model: Prunable) -> dict[str, int]:
    """Remove pruned channels physically; return the channels kept per group."""
    with torch.no_grad():
        return remove_pruned_channels(model)


def save_checkpoint(directory: Path, model: nn.Module, meta: Mapping[str, Any]) -> None:
    """Write `model.pt` (the whole module) and `checkpoint.json` into `directory`.

    The JSON is written last, through a temporary file, so a directory with a
    `checkpoint.json` always has a complete model beside it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(model, directory / CHECKPOINT_MODEL)
    temporary = directory / (CHECKPOINT_META + ".tmp")
    temporary.write_text(json.dumps(meta, indent=2, sort_keys=True))
    temporary.replace(directory / CHECKPOINT_META)


def load_checkpoint(directory: Path | str) -> tuple[nn.Module, dict[str, Any]]:
    """Load a checkpoint written by `save_checkpoint` (for example by `harness evaluate --save`).

    Raises:
        ConfigError: the directory has no complete checkpoint.
    """
    directory = Path(directory)
    meta_path = directory / CHECKPOINT_META
    model_path = directory / CHECKPOINT_MODEL
    if not meta_path.is_file() or not model_path.is_file():
        raise ConfigError(
            f"{directory} is not a checkpoint: expected {CHECKPOINT_META} and {CHECKPOINT_MODEL} "
            "(written by `harness evaluate --save DIR`)"
        )
    meta = json.loads(meta_path.read_text())
    model = torch.load(model_path, weights_only=False)
    model.eval()
    return model, meta
