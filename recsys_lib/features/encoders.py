"""Id encoders: raw string ids <-> dense indices.

An encoder is simply the sorted array of unique raw ids; an id's index is its position. Sorting
makes the mapping independent of row order, so the same ids always get the same indices.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def fit_ids(*columns: pd.Series | np.ndarray) -> np.ndarray:
    """Sorted unique raw ids over all ``columns``: ``(n_ids,)`` object array of ``str``.

    Nulls are not ids and are dropped. Hash-based de-duplication happens before the (string) sort,
    so the cost is dominated by the number of distinct ids, not rows.
    """
    uniques = [pd.unique(pd.Series(c, dtype="str").dropna()) for c in columns]
    merged = pd.unique(np.concatenate([np.asarray(u, dtype=object) for u in uniques])) if uniques else []
    return np.sort(np.asarray(merged, dtype=object))


def encode_ids(ids: np.ndarray, values: pd.Series | np.ndarray) -> np.ndarray:
    """Index of each of ``values`` in the encoder ``ids``: ``(n,)`` int64, -1 for unknown ids."""
    index = pd.Index(np.asarray(ids, dtype=object))
    return np.asarray(index.get_indexer(pd.Index(pd.Series(values, dtype="str"))), dtype=np.int64)


def decode_ids(ids: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Raw ids of indices ``idx`` (any shape), as an object array; -1 (padding) decodes to None."""
    idx = np.asarray(idx, dtype=np.int64)
    out = np.full(idx.shape, None, dtype=object)
    out[idx >= 0] = np.asarray(ids, dtype=object)[idx[idx >= 0]]
    return out
