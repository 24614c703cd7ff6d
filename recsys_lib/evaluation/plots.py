"""Figures for comparing runs in MLflow: metrics at k, and long-tail exposure. matplotlib (Agg);
each function returns a Figure the caller logs and closes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

METRICS = ("ndcg", "recall", "hr", "mrr")


def metrics_at_k(results: Mapping[str, Mapping[str, float]], ks: Sequence[int]) -> Any:
    """One panel per metric, k on the x axis, one line per model (``{label: {"ndcg_at_10": ...}}``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(METRICS), figsize=(4 * len(METRICS), 3.4), constrained_layout=True)
    for ax, metric in zip(axes, METRICS, strict=True):
        for label, values in results.items():
            ax.plot(list(ks), [values.get(f"{metric}_at_{k}", np.nan) for k in ks], marker="o", label=label)
        ax.set_title(f"{metric}@k")
        ax.set_xlabel("k")
        ax.set_xticks(list(ks))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Test metrics at k (full ranking, history excluded)")
    return fig


def long_tail(exposures: Mapping[str, np.ndarray], k: int = 10) -> Any:
    """Grouped bars: share of each model's top-k in each popularity group of the catalogue."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(exposures)
    bins = len(next(iter(exposures.values())))
    width = 0.8 / max(len(labels), 1)
    fig, ax = plt.subplots(figsize=(9, 3.6), constrained_layout=True)
    x = np.arange(bins)
    for i, label in enumerate(labels):
        ax.bar(x + i * width - 0.4 + width / 2, exposures[label], width, label=label)
    ax.axhline(1 / bins, color="grey", linestyle="--", linewidth=1, label="uniform over the catalogue")
    ax.set_xticks(x, [f"{10 * g}-{10 * (g + 1)}%" for g in range(bins)] if bins == 10 else [str(g) for g in x])
    ax.set_xlabel("items by training popularity (most popular first)")
    ax.set_ylabel(f"share of top-{k}")
    ax.set_title("Long-tail exposure of the recommendations")
    ax.legend(fontsize=8)
    return fig
