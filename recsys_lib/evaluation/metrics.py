"""Ranking metrics over top-k lists: the one place they are computed (pure numpy).

Conventions, for a user with relevant set R and ranked list r_1..r_k (binary relevance):

* ``recall_at_k`` = |hits in top k| / |R| (not / min(k, |R|), so it is below 1 when |R| > k);
* ``ndcg_at_k`` = DCG / IDCG with DCG = sum over hit ranks i of 1 / log2(i + 1) and IDCG the DCG of
  min(k, |R|) hits at ranks 1, 2, ...;
* ``hr_at_k`` = 1 if any of the top k is relevant, else 0;
* ``mrr_at_k`` = 1 / rank of the first hit within the top k, 0 without one;
* ``coverage_at_k`` = distinct items recommended in anyone's top k / n_items (a catalogue metric).

All but coverage are means over users. :func:`intra_list_diversity` (not a ranking metric: it needs
no relevance) is the share of pairs within a list whose items differ in category.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

METRICS = ("recall", "ndcg", "hr", "mrr", "coverage")


def _relevant_keys(relevant: Sequence[np.ndarray], n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique ``user * n_items + item`` keys of all relevant pairs, and |R| per user."""
    sizes = np.fromiter((len(r) for r in relevant), dtype=np.int64, count=len(relevant))
    parts = [np.asarray(r, dtype=np.int64).ravel() for r in relevant]
    items = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    if items.size and (items.min() < 0 or items.max() >= n_items):
        raise ValueError(f"relevant item indices must lie in [0, {n_items})")
    keys = np.unique(np.repeat(np.arange(len(relevant), dtype=np.int64), sizes) * n_items + items)
    n_relevant = np.bincount(keys // n_items, minlength=len(relevant)) if keys.size else np.zeros(len(relevant), int)
    return keys, n_relevant


def hit_matrix(recommended: np.ndarray, relevant: Sequence[np.ndarray], n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """``(n_users, k_max)`` bool: is the item at each rank relevant; and ``(n_users,)`` |R| per user."""
    keys, n_relevant = _relevant_keys(relevant, n_items)
    rows = np.arange(len(recommended), dtype=np.int64)[:, None]
    rec_keys = rows * n_items + np.where(recommended >= 0, recommended, 0)  # (n_users, k_max)
    hits = np.isin(rec_keys, keys) & (recommended >= 0)
    return hits, n_relevant


def ranking_metrics(
    recommended: np.ndarray, relevant: Sequence[np.ndarray], ks: Sequence[int], n_items: int
) -> dict[str, float]:
    """``{f"{metric}_at_{k}": value}`` for every metric in :data:`METRICS` and every k in ``ks``.

    ``recommended`` is ``(n_users, k_max)`` item indices, best first, -1 for padding, no item twice
    in a row; ``relevant[i]`` holds user i's relevant item indices (duplicates are ignored).
    Raises ValueError when there are no users, a user has no relevant items, or k > k_max.
    """
    recommended = np.asarray(recommended, dtype=np.int64)
    if recommended.ndim != 2 or len(recommended) != len(relevant):
        raise ValueError(f"recommended must be (n_users, k_max) with n_users = len(relevant) = {len(relevant)}")
    if len(relevant) == 0:
        raise ValueError("no users to evaluate")
    if max(ks) > recommended.shape[1] or min(ks) < 1:
        raise ValueError(f"every k must lie in [1, {recommended.shape[1]}] (the length of the lists), got {list(ks)}")
    hits, n_relevant = hit_matrix(recommended, relevant, n_items)
    if (n_relevant == 0).any():
        raise ValueError(f"{int((n_relevant == 0).sum())} users have no relevant items; leave them out")
    discounts = 1.0 / np.log2(np.arange(2, recommended.shape[1] + 2))  # (k_max,) 1/log2(rank + 1)
    ideal = np.cumsum(discounts)  # ideal[j] = IDCG with j + 1 relevant items
    out: dict[str, float] = {}
    for k in ks:
        top = hits[:, :k]  # (n_users, k)
        n_hits = top.sum(axis=1)
        first = np.where(n_hits > 0, top.argmax(axis=1) + 1, np.inf)  # rank of the first hit
        dcg = (top * discounts[:k]).sum(axis=1)
        shown = recommended[:, :k]
        out[f"recall_at_{k}"] = float(np.mean(n_hits / n_relevant))
        out[f"ndcg_at_{k}"] = float(np.mean(dcg / ideal[np.minimum(k, n_relevant) - 1]))
        out[f"hr_at_{k}"] = float(np.mean(n_hits > 0))
        out[f"mrr_at_{k}"] = float(np.mean(1.0 / first))
        out[f"coverage_at_{k}"] = len(np.unique(shown[shown >= 0])) / n_items
    return out


def intra_list_diversity(recommended: np.ndarray, category: np.ndarray, k: int) -> float:
    """Mean over lists of at least two items of the share of item pairs in the top ``k`` whose
    categories differ (``category`` (n_items,) int codes; -1, no category, differs from every
    item). ``recommended`` (n, >= k) item indices, -1 padded. 0: one category per list; 1: no two
    items alike. ``nan`` when no list has two items."""
    top = np.asarray(recommended, dtype=np.int64)[:, :k]
    listed = top >= 0
    codes = np.where(listed, np.asarray(category)[np.maximum(top, 0)], -1)  # (n, k)
    same = (codes[:, :, None] == codes[:, None, :]) & (codes[:, :, None] >= 0)  # (n, k, k)
    both = listed[:, :, None] & listed[:, None, :]
    upper = np.triu(np.ones((k, k), dtype=bool), 1)[None]
    pairs = (both & upper).sum(axis=(1, 2))
    alike = (same & both & upper).sum(axis=(1, 2))
    scored = pairs > 0
    if not scored.any():
        return float("nan")
    return float(np.mean(1.0 - alike[scored] / pairs[scored]))
