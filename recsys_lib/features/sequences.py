"""Per-user item sequences: the order in which each user met items, for sequential models."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys_lib import schema


def _group_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """Positions where a new run of equal keys begins in ``sorted_keys``."""
    if len(sorted_keys) == 0:
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])


def build_sequences(events: pd.DataFrame, max_length: int) -> pd.DataFrame:
    """One row per user with events: user_idx (int64) and item_idx, a chronological int64 array.

    ``events`` holds user_idx, item_idx and timestamp per event (normally the train window only).
    Events are ordered by time (ties keep their row order), consecutive repeats of the same item
    collapse to one entry (view, view, add_to_cart of one item -> one step), and only the newest
    ``max_length`` entries are kept. Rows are sorted by user_idx; users without events are absent.
    """
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    users = events[schema.USER_IDX].to_numpy(np.int64)
    ts = events[schema.TIMESTAMP].astype("datetime64[us, UTC]").astype("int64").to_numpy()
    order = np.lexsort((ts, users))  # stable: by user, then time, then row order
    users, items = users[order], events[schema.ITEM_IDX].to_numpy(np.int64)[order]
    new_step = np.r_[True, (users[1:] != users[:-1]) | (items[1:] != items[:-1])][: len(users)]
    users, items = users[new_step], items[new_step]

    starts = _group_starts(users)
    ends = np.r_[starts[1:], len(users)][: len(starts)]
    steps_from_end = np.repeat(ends, ends - starts) - np.arange(len(users))  # 1 = newest
    users, items = users[steps_from_end <= max_length], items[steps_from_end <= max_length]
    starts = _group_starts(users)
    return pd.DataFrame(
        {
            schema.USER_IDX: users[starts],
            schema.ITEM_IDX: pd.Series(np.split(items, starts[1:]) if len(users) else [], dtype=object),
        }
    )
