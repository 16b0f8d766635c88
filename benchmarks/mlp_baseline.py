"""Software baseline: a numpy multilayer perceptron trained by backpropagation.

The network has the "DRN-XS" shape of the analog networks it is compared with: the data
set's F inputs (doubled to 2F as ``+x/-x`` by default, as the resistive networks receive
them), one hidden layer of 100 ``tanh`` units (bounded and odd, like hidden nodes clipped
by diodes to bias sources) and one output per class:

    a = tanh(x W1 + b1),   z = a W2 + b2,   p = softmax(z),
    L = -(1/B) sum_b log p[b, y_b]                       (softmax cross-entropy)

trained by minibatch SGD with momentum on the bundled split of
:func:`analog_ep.datasets.load_dataset`; the prediction is ``argmax z``. Before training,
the backpropagated gradient is checked against central finite differences.

Run from the repository root (BLAS pinned to one thread):

    python benchmarks/mlp_baseline.py                       # mnist5k, digits, iris, xor
    python benchmarks/mlp_baseline.py --datasets mnist5k --seeds 0 1 2 --no-double

The functions are importable (``sys.path`` to ``benchmarks/``) so that another benchmark can
measure this baseline in its own run.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from analog_ep.datasets import DATASETS, Dataset, load_dataset

Params = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

DEFAULT_EPOCHS = {"xor": 300, "iris": 300, "digits": 30, "mnist5k": 30}
"""Epochs per data set: enough for the training error to settle (iris and xor have only
4 and 1 minibatches per epoch)."""

EARLY_EPOCH = 6
"""Epoch at which the test error is also reported: the budget of the published DRN-XS
recipe on this subset."""


@dataclass(frozen=True)
class MLPConfig:
    """Settings of one training run (``learning_rate`` per minibatch-mean gradient)."""

    hidden: int = 100
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 0.01
    momentum: float = 0.9
    double_inputs: bool = True


@dataclass(frozen=True)
class MLPResult:
    """Errors (fractions of misclassified examples) after each epoch, shape ``(epochs,)``,
    and the mean wall time of a training epoch in seconds (evaluation excluded)."""

    train_error: np.ndarray
    test_error: np.ndarray
    seconds_per_epoch: float


def encode(x: np.ndarray, double: bool) -> np.ndarray:
    """``(B, F)`` features to ``(B, 2F)`` as ``[x, -x]`` when ``double``, else unchanged."""
    return np.hstack([x, -x]) if double else x


def init_params(n_in: int, n_hidden: int, n_out: int, rng: np.random.Generator) -> Params:
    """Weights ``N(0, 1/fan_in)``, biases zero: ``W1 (n_in, n_hidden)``, ``b1``,
    ``W2 (n_hidden, n_out)``, ``b2``."""
    w1 = rng.normal(0.0, 1.0 / np.sqrt(n_in), (n_in, n_hidden))
    w2 = rng.normal(0.0, 1.0 / np.sqrt(n_hidden), (n_hidden, n_out))
    return w1, np.zeros(n_hidden), w2, np.zeros(n_out)


def forward(params: Params, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hidden activations ``a (B, n_hidden)`` and logits ``z (B, n_out)``; ``x``: ``(B, n_in)``."""
    w1, b1, w2, b2 = params
    a = np.tanh(x @ w1 + b1)
    return a, a @ w2 + b2


def loss_and_grad(params: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, Params]:
    """Mean softmax cross-entropy ``L`` over the batch and ``dL/dparams`` by backpropagation:
    ``dL/dz = (p - onehot(y)) / B``, ``dL/dW2 = a^T dL/dz``, ``dL/da = dL/dz W2^T``,
    ``dL/dh = dL/da (1 - a^2)``, ``dL/dW1 = x^T dL/dh``."""
    w1, _, w2, _ = params
    a, z = forward(params, x)
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    rows = np.arange(len(y))
    dz = np.exp(log_p)
    dz[rows, y] -= 1.0
    dz /= len(y)
    dh = (dz @ w2.T) * (1.0 - a * a)
    grads = (x.T @ dh, dh.sum(axis=0), a.T @ dz, dz.sum(axis=0))
    return float(-log_p[rows, y].mean()), grads


def check_gradient(rng: np.random.Generator, eps: float = 1e-5) -> float:
    """Largest relative difference between the backpropagated gradient and central finite
    differences ``(L(p + eps) - L(p - eps)) / (2 eps)`` on a small random network; the
    truncation error is O(eps^2), so a correct gradient gives about 1e-9."""
    params = init_params(5, 4, 3, rng)
    x, y = rng.normal(size=(7, 5)), rng.integers(0, 3, 7)
    _, grads = loss_and_grad(params, x, y)
    worst = 0.0
    for p, g in zip(params, grads):
        numeric = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            saved = p[i]
            p[i] = saved + eps
            up = loss_and_grad(params, x, y)[0]
            p[i] = saved - eps
            down = loss_and_grad(params, x, y)[0]
            p[i] = saved
            numeric[i] = (up - down) / (2 * eps)
        scale = np.abs(numeric) + np.abs(g) + 1e-12
        worst = max(worst, float(np.max(np.abs(numeric - g) / scale)))
    return worst


def error_rate(params: Params, x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of examples whose ``argmax z`` is not the label."""
    return float(np.mean(forward(params, x)[1].argmax(axis=1) != y))


def train_mlp(data: Dataset, config: MLPConfig, rng: np.random.Generator) -> MLPResult:
    """Train from an initialisation drawn with ``rng``; minibatches are drawn without
    replacement from a fresh permutation each epoch."""
    x_train = encode(data.x_train, config.double_inputs)
    x_test = encode(data.x_test, config.double_inputs)
    params = init_params(x_train.shape[1], config.hidden, data.n_classes, rng)
    velocity = tuple(np.zeros_like(p) for p in params)
    train_err, test_err, seconds = [], [], 0.0
    for _ in range(config.epochs):
        start = time.perf_counter()
        order = rng.permutation(len(x_train))
        for i in range(0, len(order), config.batch_size):
            batch = order[i : i + config.batch_size]
            _, grads = loss_and_grad(params, x_train[batch], data.y_train[batch])
            for p, v, g in zip(params, velocity, grads):
                v *= config.momentum
                v -= config.learning_rate * g
                p += v
        seconds += time.perf_counter() - start
        train_err.append(error_rate(params, x_train, data.y_train))
        test_err.append(error_rate(params, x_test, data.y_test))
    return MLPResult(np.array(train_err), np.array(test_err), seconds / config.epochs)


def _percent(values: list[float]) -> str:
    return ", ".join(f"{100 * v:.1f}" for v in values)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS,
                        default=["mnist5k", "digits", "iris", "xor"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="default: per data set, see DEFAULT_EPOCHS")
    parser.add_argument("--no-double", dest="double", action="store_false",
                        help="feed x instead of [x, -x]")
    args = parser.parse_args(argv)

    with threadpool_limits(1):
        gap = check_gradient(np.random.default_rng(0))
        if gap > 1e-6:
            sys.exit(f"backpropagated gradient differs from finite differences by {gap:.2e}")
        print(f"gradient check: max relative difference to central differences {gap:.1e}")
        print("| data set | inputs | epochs | test error % (median; seeds) "
              f"| after {EARLY_EPOCH} epochs % | train error % | s/epoch |")
        print("|---|---|---|---|---|---|---|")
        for name in args.datasets:
            data = load_dataset(name)
            epochs = args.epochs or DEFAULT_EPOCHS[name]
            config = MLPConfig(epochs=epochs, double_inputs=args.double)
            runs = [train_mlp(data, config, np.random.default_rng(s)) for s in args.seeds]
            final = [r.test_error[-1] for r in runs]
            early = [r.test_error[min(EARLY_EPOCH, config.epochs) - 1] for r in runs]
            inputs = data.n_features * (2 if args.double else 1)
            print(f"| {name} | {inputs} | {config.epochs} "
                  f"| {100 * np.median(final):.1f} ({_percent(final)}) "
                  f"| {100 * np.median(early):.1f} ({_percent(early)}) "
                  f"| {100 * np.median([r.train_error[-1] for r in runs]):.1f} "
                  f"| {np.median([r.seconds_per_epoch for r in runs]):.2g} |", flush=True)


if __name__ == "__main__":
    main()
