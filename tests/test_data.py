import numpy as np
import pytest
import torch

from harness.data import load_dataset
from harness.errors import ConfigError, DataError


@pytest.mark.parametrize(
    ("name", "shape", "classes", "train_plus_val", "test"),
    [
        ("basicmotions", (6, 1, 100), 4, 40, 40),
        ("japanesevowels", (12, 1, 29), 9, 270, 370),
        ("gunpoint", (1, 1, 150), 2, 50, 150),
        ("digits", (1, 8, 8), 10, 1347, 450),
        ("fashion_mnist", (1, 28, 28), 10, 60000, 10000),
    ],
)
def test_shapes_and_class_counts(name, shape, classes, train_plus_val, test):
    splits = load_dataset(name)
    assert splits.input_shape == shape
    assert splits.num_classes == classes
    assert len(splits.y_train) + len(splits.y_val) == train_plus_val
    assert len(splits.y_test) == test
    assert splits.X_train.dtype == torch.float32
    assert splits.y_train.dtype == torch.int64
    assert set(splits.y_test.tolist()) <= set(range(classes))


def test_standardized_with_training_statistics():
    splits = load_dataset("basicmotions")
    mean = splits.X_train.mean(dim=(0, 2, 3))
    std = splits.X_train.std(dim=(0, 2, 3), unbiased=False)
    assert torch.allclose(mean, torch.zeros(6), atol=1e-5)
    assert torch.allclose(std, torch.ones(6), atol=1e-4)
    # The test split is transformed with the same statistics, so it is not exactly standard.
    assert not torch.allclose(splits.X_test.mean(dim=(0, 2, 3)), torch.zeros(6), atol=1e-3)


def test_validation_split_is_seeded_and_disjoint():
    a = load_dataset("digits", seed=3)
    b = load_dataset("digits", seed=3)
    c = load_dataset("digits", seed=4)
    assert torch.equal(a.X_val, b.X_val)
    assert not torch.equal(a.X_val, c.X_val)
    train_rows = {tuple(x.flatten().tolist()) for x in a.X_train}
    assert not any(tuple(x.flatten().tolist()) in train_rows for x in a.X_val[:50])


def test_validation_split_is_stratified():
    splits = load_dataset("basicmotions")
    assert np.bincount(splits.y_val.numpy(), minlength=4).tolist() == [2, 2, 2, 2]


def test_variable_length_padding_is_zero():
    splits = load_dataset("japanesevowels")
    lengths = (splits.X_train.abs().sum(dim=(1, 2)) > 0).sum(dim=1)
    assert lengths.min() < lengths.max()


def test_unknown_dataset_lists_choices():
    with pytest.raises(ConfigError, match="unknown dataset 'mnist'.*basicmotions"):
        load_dataset("mnist")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cifar10", r"cifar-10-batches-py: data_batch_1.*test_batch"),
        ("daliac", r"daliac: S01\.mat.*S19\.mat"),
        ("epilepsy", r"Epilepsy: Epilepsy_TRAIN\.ts, Epilepsy_TEST\.ts"),
    ],
)
def test_missing_local_files_named(tmp_path, name, expected):
    with pytest.raises(DataError, match=expected) as info:
        load_dataset(name, data_dir=tmp_path)
    assert str(tmp_path) in str(info.value)


def test_cifar10_from_local_directory(tmp_path):
    import pickle

    directory = tmp_path / "cifar-10-batches-py"
    directory.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8), b"labels": list(range(10)) * 2}
        with open(directory / name, "wb") as handle:
            pickle.dump(batch, handle)
    splits = load_dataset("cifar10", data_dir=tmp_path)
    assert splits.input_shape == (3, 32, 32)
    assert len(splits.y_train) + len(splits.y_val) == 100
    assert splits.num_classes == 10


def test_ts_directory_loader(tmp_path):
    directory = tmp_path / "Epilepsy"
    directory.mkdir()
    header = "@problemName Epilepsy\n@timeStamps false\n@missing false\n@univariate false\n@dimensions 2\n@equalLength true\n@seriesLength 4\n@classLabel true a b\n@data\n"
    rows = "".join(f"1,2,3,{i}:4,5,6,{i}:{'a' if i % 2 else 'b'}\n" for i in range(10))
    for split in ("TRAIN", "TEST"):
        (directory / f"Epilepsy_{split}.ts").write_text(header + rows)
    splits = load_dataset("epilepsy", data_dir=tmp_path)
    assert splits.input_shape == (2, 1, 4)
    assert splits.num_classes == 2
