"""Long-tail exposure: where in the popularity curve a model's recommendations land.

Items are ranked by their number of training interactions and cut into ``bins`` groups of equal
size (group 0 = the most popular tenth of the catalogue with 10 bins). A model that only repeats
bestsellers puts most of its top-k into group 0; one that reaches the long tail spreads them out.
"""

from __future__ import annotations

import numpy as np

#: Groups "the tail" starts at, with 10 bins: the 80% least popular items.
TAIL_FROM = 2


def popularity_groups(popularity: np.ndarray, bins: int = 10) -> np.ndarray:
    """Group of each item (0 = most popular), ties broken by item index so groups are stable."""
    order = np.lexsort((np.arange(len(popularity)), -np.asarray(popularity)))
    groups = np.empty(len(popularity), dtype=np.int64)
    groups[order] = np.arange(len(popularity)) * bins // max(len(popularity), 1)
    return groups


def popularity_exposure(recommended: np.ndarray, popularity: np.ndarray, k: int = 10, bins: int = 10) -> np.ndarray:
    """Share of the top-``k`` recommendations (padding ignored) that falls in each popularity group;
    sums to 1 (all zeros when nothing was recommended)."""
    items = np.asarray(recommended)[:, :k].ravel()
    items = items[items >= 0]
    counts = np.bincount(popularity_groups(popularity, bins)[items], minlength=bins).astype(np.float64)
    return counts / counts.sum() if counts.sum() else counts


def tail_share(exposure: np.ndarray) -> float:
    """Share of recommendations outside the most popular 20% of items (with 10 groups)."""
    return float(np.asarray(exposure)[TAIL_FROM:].sum())
