"""``sweep.png``: test accuracy against the first swept axis that is neither ``seed`` nor
``rule``, one line per rule, error bars one standard error of the mean over seeds
(``s / sqrt(n)``, ``s`` the sample standard deviation; none for a single seed)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from .spec import Sweep


def plot_sweep(sweep: Sweep, records: dict[str, dict], path: Path) -> bool:
    """Write the figure; False (nothing written) when no axis other than seed/rule is swept."""
    xs = [k for k in sweep.axes if k not in ("seed", "rule")]
    if not xs:
        return False
    import matplotlib  # loaded only when a figure is drawn
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    x = xs[0]
    groups: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for cell in sweep.cells:
        r = records.get(cell.id)
        if r and r["status"] == "ok":
            groups[str(cell.settings.get("rule", "default"))][cell.settings[x]].append(r["final"]["test_accuracy"])
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for rule, by_x in sorted(groups.items()):
        v = sorted(by_x)
        mean = [np.mean(by_x[k]) for k in v]
        sem = [np.std(by_x[k], ddof=1) / np.sqrt(len(by_x[k])) if len(by_x[k]) > 1 else 0.0 for k in v]
        ax.errorbar(v, mean, yerr=sem, marker="o", capsize=3, label=rule)
    values = sweep.axes[x]
    if all(isinstance(v, (int, float)) for v in values) and min(values) > 0 and max(values) / min(values) >= 20:
        ax.set_xscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel("test accuracy")
    ax.legend(title="rule")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
