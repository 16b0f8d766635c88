"""Bundled data sets: shapes, stratified splits, determinism, scaling, errors."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analog_ep.datasets import DATASETS, SPLIT_SEED, Dataset, load_dataset, stratified_split
from analog_ep.errors import ConfigError

# name: (n_train, n_test, n_features, n_classes, examples per class in the whole set)
EXPECTED = {
    "xor": (4, 4, 2, 2, None),
    "iris": (100, 50, 4, 3, [50, 50, 50]),
    "digits": (1297, 500, 64, 10, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]),
    "mnist5k": (4000, 1000, 784, 10, [500] * 10),
}


def test_names_listed():
    assert set(DATASETS) == set(EXPECTED)


@pytest.mark.parametrize("name", DATASETS)
def test_shapes_and_types(name):
    n_train, n_test, n_features, n_classes, _ = EXPECTED[name]
    d = load_dataset(name)
    assert d.name == name and d.n_features == n_features and d.n_classes == n_classes
    assert d.x_train.shape == (n_train, n_features) and d.x_test.shape == (n_test, n_features)
    assert d.y_train.shape == (n_train,) and d.y_test.shape == (n_test,)
    assert d.x_train.dtype == np.float64 and d.y_train.dtype == np.int64
    assert d.split_seed == SPLIT_SEED and d.source and "\n" not in d.source
    assert set(np.unique(d.y_train)) == set(range(n_classes)) == set(np.unique(d.y_test))


def test_xor_truth_table():
    d = load_dataset("xor")
    assert np.array_equal(d.x_train, d.x_test) and np.array_equal(d.y_train, d.y_test)
    assert np.all(np.abs(d.x_train) == 1.0)
    assert np.array_equal(d.y_train, (d.x_train[:, 0] != d.x_train[:, 1]).astype(int))
    assert len({tuple(x) for x in d.x_train}) == 4


@pytest.mark.parametrize("name", ["iris", "digits", "mnist5k"])
def test_split_is_stratified(name):
    n_train, n_test, _, _, per_class = EXPECTED[name]
    d = load_dataset(name)
    per_class = np.array(per_class)
    test_counts = np.bincount(d.y_test, minlength=d.n_classes)
    train_counts = np.bincount(d.y_train, minlength=d.n_classes)
    assert np.array_equal(test_counts + train_counts, per_class)
    # each class within one example of its proportional share
    assert np.all(np.abs(test_counts - n_test * per_class / per_class.sum()) < 1.0)


def test_mnist_split_exactly_balanced():
    d = load_dataset("mnist5k")
    assert np.all(np.bincount(d.y_train) == 400) and np.all(np.bincount(d.y_test) == 100)


def _raw(name):
    from analog_ep.datasets import _BUNDLED, _read_table

    return _read_table(_BUNDLED[name])


@pytest.mark.parametrize("name", ["iris", "digits", "mnist5k"])
def test_split_partitions_the_file(name):
    """The splits are a partition of the file's rows, drawn by the recorded seed."""
    d = load_dataset(name)
    _, y_raw = _raw(name)
    train, test = stratified_split(y_raw, len(d.y_test), np.random.default_rng(d.split_seed))
    assert np.intersect1d(train, test).size == 0
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(y_raw.size))
    assert np.array_equal(d.y_train, y_raw[train]) and np.array_equal(d.y_test, y_raw[test])


@pytest.mark.parametrize("name", ["digits", "mnist5k"])
def test_no_test_image_in_training_set(name):
    """digits and MNIST-5k have no duplicate rows, so no test row may occur in training
    (iris has one duplicated flower, so only the index partition above applies)."""
    d = load_dataset(name)
    train_rows = {row.tobytes() for row in d.x_train}
    assert not any(row.tobytes() in train_rows for row in d.x_test)


@pytest.mark.parametrize("name", ["iris", "digits", "mnist5k"])
def test_scaling_range_and_fit_on_train(name):
    d = load_dataset(name)
    for x in (d.x_train, d.x_test):
        assert np.all(np.isfinite(x)) and x.min() >= -1.0 and x.max() <= 1.0
    span = d.x_train.max(axis=0) - d.x_train.min(axis=0)
    varying = span > 0
    # min-max fitted on the training split: each varying feature reaches both ends
    assert np.allclose(d.x_train.min(axis=0)[varying], -1.0)
    assert np.allclose(d.x_train.max(axis=0)[varying], 1.0)
    # features constant on the training split map to 0 in both splits
    assert np.all(d.x_train[:, ~varying] == 0.0) and np.all(d.x_test[:, ~varying] == 0.0)


def test_scaling_is_affine_map_of_raw_pixels():
    """digits: scaled train values are 2 (x - min) / (max - min) - 1 of the raw 0..16 data."""
    x_raw, y_raw = _raw("digits")
    d = load_dataset("digits")
    train, _ = stratified_split(y_raw, 500, np.random.default_rng(d.split_seed))
    raw = x_raw[train]
    lo, hi = raw.min(axis=0), raw.max(axis=0)
    j = np.flatnonzero(hi > lo)
    assert np.allclose(d.x_train[:, j], 2 * (raw[:, j] - lo[j]) / (hi[j] - lo[j]) - 1)
    assert np.any(hi == lo), "digits has constant border pixels; the zero-span path is exercised"


def test_cached_and_read_only():
    d = load_dataset("iris")
    assert load_dataset("iris") is d
    for a in (d.x_train, d.y_train, d.x_test, d.y_test):
        assert not a.flags.writeable
        with pytest.raises(ValueError):
            a[0] = 0


def test_deterministic_across_processes():
    """A fresh interpreter draws the same split (nothing depends on process state)."""
    code = (
        "from analog_ep.datasets import load_dataset; import hashlib; d = load_dataset('digits');"
        "print(hashlib.sha256(d.x_train.tobytes() + d.y_test.tobytes()).hexdigest())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    d = load_dataset("digits")
    here = hashlib.sha256(d.x_train.tobytes() + d.y_test.tobytes()).hexdigest()
    assert out.stdout.strip() == here


@pytest.mark.parametrize("bad", ["mnist", "Iris", "", None, 3])
def test_unknown_name_lists_known(bad):
    with pytest.raises(ConfigError) as err:
        load_dataset(bad)
    for name in DATASETS:
        assert name in str(err.value)


def test_corrupt_file_is_reported(monkeypatch):
    import analog_ep.datasets as ds

    entry = ds._BUNDLED["iris"]
    monkeypatch.setitem(
        ds._BUNDLED, "iris", ds._Bundled(entry.file, "0" * 64, 1, entry.n_test, entry.source)
    )
    ds._load.cache_clear()
    try:
        with pytest.raises(ConfigError, match="iris.csv is corrupt"):
            load_dataset("iris")
    finally:
        ds._load.cache_clear()


def test_dataset_rejects_inconsistent_arrays():
    x, y = np.zeros((3, 2)), np.array([0, 1, 0])
    with pytest.raises(ConfigError, match="labels"):
        Dataset("t", x, y[:2], x, y, 2, 0, "s")
    with pytest.raises(ConfigError, match="0..1"):
        Dataset("t", x, np.array([0, 2, 0]), x, y, 2, 0, "s")
    with pytest.raises(ConfigError, match="features"):
        Dataset("t", x, y, np.zeros((3, 5)), y, 2, 0, "s")


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(0, 30), min_size=1, max_size=6).filter(lambda c: sum(c) > 0),
    frac=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_stratified_split_properties(counts, frac, seed):
    y = np.repeat(np.arange(len(counts)), counts)
    n_test = int(round(frac * y.size))
    train, test = stratified_split(y, n_test, np.random.default_rng(seed))
    assert len(test) == n_test and len(train) == y.size - n_test
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(y.size))
    expected = n_test * np.array(counts) / y.size
    assert np.all(np.abs(np.bincount(y[test], minlength=len(counts)) - expected) < 1.0)
    again = stratified_split(y, n_test, np.random.default_rng(seed))
    assert np.array_equal(train, again[0]) and np.array_equal(test, again[1])


def test_stratified_split_draws_uniform_subsets():
    """Each example of a class lands in the test set with probability k_c / n_c: over 2,000
    seeds the counts match that binomial mean within 4 standard errors."""
    y = np.repeat([0, 1], [6, 9])  # n_test = 5: k = (2, 3)
    hits = np.zeros(y.size)
    trials = 2000
    for seed in range(trials):
        hits[stratified_split(y, 5, np.random.default_rng(seed))[1]] += 1
    p = np.where(y == 0, 2 / 6, 3 / 9)
    se = np.sqrt(trials * p * (1 - p))
    assert np.all(np.abs(hits - trials * p) < 4 * se)


@pytest.mark.parametrize(
    "bad_y, n_test", [(np.array([0.5, 1.0]), 1), (np.array([0, -1]), 1), (np.array([0, 1]), 3)]
)
def test_stratified_split_rejects_bad_input(bad_y, n_test):
    with pytest.raises(ConfigError):
        stratified_split(bad_y, n_test, np.random.default_rng(0))
