"""Datasets: one loader interface returning standardized train / validation / test tensors.

Sets that ship inside installed packages load without any file: the UEA and
UCR sets bundled with `aeon`, Fashion-MNIST from Debian's
`dataset-fashion-mnist` package and `sklearn`'s digits. Others (CIFAR-10,
DaLiAc, any UEA/UCR set in `.ts` format) load from a local directory in their
published formats; nothing is downloaded at run time.

Every split is a float32 tensor of shape `N x C x H x W`; 1-D series are
`N x C x 1 x L`. The validation split is carved from the training data with a
fixed seed (stratified); the test split is only for final scores. Each
channel is standardized with the mean and standard deviation of the training
part alone.
"""

from __future__ import annotations

import dataclasses
import gzip
import logging
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from harness.errors import ConfigError, DataError

log = logging.getLogger(__name__)

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
DATA_DIR_ENV = "HARNESS_DATA_DIR"
DEFAULT_VALIDATION_FRACTION = 0.2


@dataclasses.dataclass
class DatasetSplits:
    """Standardized splits of one dataset.

    Attributes:
        X_train, X_val, X_test: float32 tensors, `n x C x H x W`.
        y_train, y_val, y_test: int64 class indices, `n`.
        classes: original label of each class index.
        channel_mean, channel_std: standardization statistics, shape `C`.
    """

    name: str
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    classes: list[str]
    channel_mean: np.ndarray
    channel_std: np.ndarray

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape of one sample, `C x H x W`."""
        return tuple(self.X_train.shape[1:])  # type: ignore[return-value]

    def summary(self) -> dict[str, object]:
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "train": len(self.y_train),
            "val": len(self.y_val),
            "test": len(self.y_test),
        }


@dataclasses.dataclass
class _RawSplits:
    """Unstandardized arrays as a loader returns them: X is `n x C x H x W`, y contains labels."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def resolve_data_dir(explicit: Path | str | None = None) -> Path:
    """Return the directory for sets that are not shipped by a package.

    `explicit`, else the environment variable HARNESS_DATA_DIR, else `./data`.
    """
    if explicit is not None:
        return Path(explicit)
    return Path(os.environ.get(DATA_DIR_ENV, "data"))


def _series_to_4d(X: np.ndarray) -> np.ndarray:
    """Turn `n x C x L` series into `n x C x 1 x L`."""
    return X[:, :, None, :]


def _pad_series(series: list[np.ndarray], length: int) -> np.ndarray:
    """Pad each `C x L_i` series at the end with NaN to `length` (filled after standardization)."""
    out = np.full((len(series), series[0].shape[0], length), np.nan)
    for i, s in enumerate(series):
        out[i, :, : min(length, s.shape[1])] = s[:, :length]
    return out


def _load_aeon(loader_name: str) -> Callable[[Path], _RawSplits]:
    def load(_root: Path) -> _RawSplits:
        import aeon.datasets

        loader = getattr(aeon.datasets, loader_name)
        X_train, y_train = loader(split="train")
        X_test, y_test = loader(split="test")
        if isinstance(X_train, list):
            length = max(x.shape[1] for x in [*X_train, *X_test])
            X_train, X_test = _pad_series(X_train, length), _pad_series(X_test, length)
        return _RawSplits(_series_to_4d(np.asarray(X_train)), y_train, _series_to_4d(np.asarray(X_test)), y_test)

    return load


def _read_idx(path: Path) -> np.ndarray:
    """Read a gzipped IDX file (the MNIST format): magic, dimensions, then uint8 data."""
    with gzip.open(path, "rb") as handle:
        content = handle.read()
    ndim = content[3]
    dims = [int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(content, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(
            f"{path}: invalid IDX file: the header gives shape {dims} but the file contains "
            f"{data.size} values; reinstall dataset-fashion-mnist"
        )
    return data.reshape(dims)


def _require_files(directory: Path, names: list[str], dataset: str, hint: str) -> None:
    missing = [name for name in names if not (directory / name).exists()]
    if missing:
        raise DataError(
            f"dataset {dataset!r}: missing files in {directory}: {', '.join(missing)}. {hint}"
        )


def _load_fashion_mnist(_root: Path) -> _RawSplits:
    names = [
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
    ]
    _require_files(
        FASHION_MNIST_DIR, names, "fashion_mnist",
        "Install the Debian package: apt-get install dataset-fashion-mnist",
    )
    images = [_read_idx(FASHION_MNIST_DIR / n) for n in names]
    return _RawSplits(
        images[0][:, None].astype(np.float32), images[1],
        images[2][:, None].astype(np.float32), images[3],
    )


def _load_digits(_root: Path) -> _RawSplits:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    # sklearn's digits has no official test split: a fixed stratified 25 %.
    X_train, X_test, y_train, y_test = train_test_split(
        digits.images[:, None], digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )
    return _RawSplits(X_train, y_train, X_test, y_test)


def _load_cifar10(root: Path) -> _RawSplits:
    directory = root / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    _require_files(
        directory, names, "cifar10",
        "Unpack the CIFAR-10 python version (cifar-10-python.tar.gz) into "
        f"{root} so that {directory} exists.",
    )

    def read(name: str) -> tuple[np.ndarray, np.ndarray]:
        with open(directory / name, "rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
        return batch[b"data"].reshape(-1, 3, 32, 32), np.asarray(batch[b"labels"])

    parts = [read(n) for n in names[:-1]]
    X_test, y_test = read("test_batch")
    return _RawSplits(
        np.concatenate([p[0] for p in parts]).astype(np.float32),
        np.concatenate([p[1] for p in parts]), X_test.astype(np.float32), y_test,
    )


# DaLiAc (Leutheuser et al., 2013): 19 subjects, 13 activities, four sensor
# nodes (hip, chest, right wrist, left ankle) with 3-axis accelerometer and
# gyroscope at 204.8 Hz. The published archive has one MAT file per subject,
# S01.mat .. S19.mat, each with a matrix `data`: 24 sensor columns, then the
# activity label.
DALIAC_SUBJECTS = [f"S{i:02d}.mat" for i in range(1, 20)]
DALIAC_TEST_SUBJECTS = 4  # the last four subjects form the test split
DALIAC_WINDOW = 256  # samples (1.25 s)


def _window(data: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut a `samples x (channels + 1)` recording into half-overlapping windows with majority labels."""
    windows, labels = [], []
    for start in range(0, data.shape[0] - window + 1, window // 2):
        chunk = data[start : start + window]
        values, counts = np.unique(chunk[:, -1], return_counts=True)
        windows.append(chunk[:, :-1].T)
        labels.append(values[np.argmax(counts)])
    return np.asarray(windows), np.asarray(labels)


def _load_daliac(root: Path) -> _RawSplits:
    # NOTE: written from the dataset's published description; not yet run on
    # the real archive, which cannot be downloaded on the development machine.
    from scipy.io import loadmat

    directory = root / "daliac"
    _require_files(
        directory, DALIAC_SUBJECTS, "daliac",
        "Place the DaLiAc subject files (S01.mat .. S19.mat, matrix `data`, label in the last column) there.",
    )
    per_subject = []
    for name in DALIAC_SUBJECTS:
        content = loadmat(directory / name)
        if "data" not in content:
            raise DataError(f"dataset 'daliac': {directory / name} has no matrix named 'data'")
        per_subject.append(_window(np.asarray(content["data"], dtype=np.float64), DALIAC_WINDOW))
    train = per_subject[:-DALIAC_TEST_SUBJECTS]
    test = per_subject[-DALIAC_TEST_SUBJECTS:]
    return _RawSplits(
        _series_to_4d(np.concatenate([w for w, _ in train])), np.concatenate([y for _, y in train]),
        _series_to_4d(np.concatenate([w for w, _ in test])), np.concatenate([y for _, y in test]),
    )


def _load_ts_directory(name: str) -> Callable[[Path], _RawSplits]:
    """Loader for a UEA/UCR archive set stored as `<root>/<Name>/<Name>_TRAIN.ts` and `_TEST.ts`."""

    def load(root: Path) -> _RawSplits:
        from aeon.datasets import load_from_ts_file

        directory = root / name
        files = [f"{name}_TRAIN.ts", f"{name}_TEST.ts"]
        _require_files(
            directory, files, name.lower(),
            "Place the set from the UEA/UCR time series archive there in .ts format.",
        )
        X_train, y_train = load_from_ts_file(str(directory / files[0]))
        X_test, y_test = load_from_ts_file(str(directory / files[1]))
        if isinstance(X_train, list) or isinstance(X_test, list):
            X_train, X_test = list(X_train), list(X_test)
            length = max(x.shape[1] for x in [*X_train, *X_test])
            X_train, X_test = _pad_series(X_train, length), _pad_series(X_test, length)
        return _RawSplits(_series_to_4d(np.asarray(X_train)), y_train, _series_to_4d(np.asarray(X_test)), y_test)

    return load


# UEA and UCR sets that are read from a local directory in .ts format.
LOCAL_ARCHIVE_SETS = (
    "ArticularyWordRecognition", "AtrialFibrillation", "Cricket", "Epilepsy", "ERing",
    "EthanolConcentration", "FingerMovements", "HandMovementDirection", "Handwriting",
    "Heartbeat", "Libras", "LSST", "NATOPS", "PenDigits", "RacketSports",
    "SelfRegulationSCP1", "SelfRegulationSCP2", "StandWalkJump", "UWaveGestureLibrary",
    "ECG200", "ECG5000", "FordA", "Wafer", "ElectricDevices",
)

_REGISTRY: dict[str, Callable[[Path], _RawSplits]] = {
    "basicmotions": _load_aeon("load_basic_motions"),
    "japanesevowels": _load_aeon("load_japanese_vowels"),
    "gunpoint": _load_aeon("load_gunpoint"),
    "italypowerdemand": _load_aeon("load_italy_power_demand"),
    "arrowhead": _load_aeon("load_arrow_head"),
    "osuleaf": _load_aeon("load_osuleaf"),
    "fashion_mnist": _load_fashion_mnist,
    "digits": _load_digits,
    "cifar10": _load_cifar10,
    "daliac": _load_daliac,
}
for _name in LOCAL_ARCHIVE_SETS:
    _REGISTRY.setdefault(_name.lower(), _load_ts_directory(_name))

DATASETS = tuple(_REGISTRY)


def _encode_labels(y_train: np.ndarray, y_test: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    labels = [str(v) for v in y_train]
    classes = sorted(set(labels), key=lambda v: (len(v), v) if v.lstrip("-").isdigit() else (0, v))
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({str(v) for v in y_test} - set(classes))
    if unknown:
        raise DataError(f"test labels {unknown} do not occur in the training split")
    return (
        np.array([index[v] for v in labels], dtype=np.int64),
        np.array([index[str(v)] for v in y_test], dtype=np.int64),
        classes,
    )


def _validation_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return stratified (train, validation) index arrays with at least one validation sample."""
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(y))
    counts = np.bincount(y)
    stratify = y if counts.min() >= 2 and round(fraction * len(y)) >= len(counts) else None
    train_idx, val_idx = train_test_split(
        indices, test_size=max(1, int(round(fraction * len(y)))), random_state=seed, stratify=stratify
    )
    return np.sort(train_idx), np.sort(val_idx)


def load_dataset(
    name: str,
    *,
    seed: int = 0,
    data_dir: Path | str | None = None,
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
    max_train_samples: int | None = None,
) -> DatasetSplits:
    """Load dataset `name` as standardized train / validation / test tensors.

    Args:
        name: a registered name (see `DATASETS`), lower case.
        seed: seed of the validation split (and of the training subset, if any).
        data_dir: directory for sets that no package ships (default: see `resolve_data_dir`).
        validation_fraction: share of the training data held out for validation.
        max_train_samples: keep at most this many training samples (a stratified
            subset, drawn before the validation split), for quick runs on large sets.

    Raises:
        ConfigError: unknown name or invalid fraction.
        DataError: files missing or malformed.
    """
    name = name.lower()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if not 0.0 < validation_fraction < 1.0:
        raise ConfigError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    root = resolve_data_dir(data_dir)
    raw = _REGISTRY[name](root)
    y_train, y_test, classes = _encode_labels(np.asarray(raw.y_train), np.asarray(raw.y_test))
    X_all = np.asarray(raw.X_train, dtype=np.float64)
    X_test = np.asarray(raw.X_test, dtype=np.float64)

    if max_train_samples is not None and max_train_samples < len(y_train):
        from sklearn.model_selection import train_test_split

        keep, _ = train_test_split(
            np.arange(len(y_train)), train_size=max_train_samples, random_state=seed, stratify=y_train
        )
        keep = np.sort(keep)
        X_all, y_train = X_all[keep], y_train[keep]

    train_idx, val_idx = _validation_split(y_train, validation_fraction, seed)
    X_train = X_all[train_idx]
    axes = (0, 2, 3)
    mean = np.nanmean(X_train, axis=axes)
    std = np.nanstd(X_train, axis=axes)
    std = np.where(std > 0, std, 1.0)

    def standardize(X: np.ndarray) -> torch.Tensor:
        Z = (X - mean[None, :, None, None]) / std[None, :, None, None]
        # Padding of variable-length series becomes 0, the training mean.
        return torch.from_numpy(np.nan_to_num(Z, nan=0.0).astype(np.float32))

    splits = DatasetSplits(
        name=name,
        X_train=standardize(X_train),
        y_train=torch.from_numpy(y_train[train_idx]),
        X_val=standardize(X_all[val_idx]),
        y_val=torch.from_numpy(y_train[val_idx]),
        X_test=standardize(X_test),
        y_test=torch.from_numpy(y_test),
        classes=classes,
        channel_mean=mean,
        channel_std=std,
    )
    log.debug("loaded %s", splits.summary())
    return splits
