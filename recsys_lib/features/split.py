"""Splits of the events into train, validation and test windows (``features.split``).

* temporal (production): global time cut-offs put the newest events in test, the ones before in
  validation. A cut-off is a timestamp, not a row position, so events at the same instant always
  land in the same window and ``max(train) < min(validation) <= max(validation) < min(test)`` holds.
* leave-one-out (the protocol of the published sequential-model tables): each user's newest event
  is test, the one before it validation, everything older train.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from recsys_lib import schema

#: split code of each window, as returned by :func:`assign_splits`.
SPLIT_CODES: dict[str, int] = {schema.TRAIN: 0, schema.VALIDATION: 1, schema.TEST: 2}


def _window_size(n_events: int, fraction: float) -> int:
    """Events in a window of ``fraction``: rounded, and at least one when the fraction is positive."""
    return 0 if fraction <= 0 else max(1, math.floor(n_events * fraction + 0.5))


def temporal_cutoffs(
    timestamps: pd.Series, validation_fraction: float, test_fraction: float
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``(validation_start, test_start)``: events at or after ``test_start`` are test, events in
    ``[validation_start, test_start)`` validation, older ones train.

    ``test_start`` is the timestamp of the ``round(n * test_fraction)``-th newest event (at least
    one); ``validation_start`` that of the ``round(n * validation_fraction)``-th event (at least one
    if the fraction is positive) before the first test event. With ``validation_fraction = 0``
    both are equal and validation is empty. Ties at a cut-off move the whole tie into the newer
    window, so the realised fractions can be larger on coarse timestamps; if every event shares
    one timestamp, everything is test.
    """
    ts = pd.Series(timestamps).sort_values(ignore_index=True)  # (n,) oldest first
    if len(ts) == 0:
        raise ValueError("cannot split an empty event table by time")
    n_test = _window_size(len(ts), test_fraction)
    n_val = _window_size(len(ts), validation_fraction)
    test_start = ts.iloc[max(len(ts) - n_test, 0)]
    first_test = int(ts.searchsorted(test_start, side="left"))  # ties moved the window's start back
    return ts.iloc[max(first_test - n_val, 0)], test_start


def assign_splits(timestamps: pd.Series, cutoffs: tuple[pd.Timestamp, pd.Timestamp]) -> np.ndarray:
    """``(n,)`` int8 split code per event (see :data:`SPLIT_CODES`) for the given cut-offs."""
    validation_start, test_start = cutoffs
    ts = pd.Series(timestamps)
    codes = np.zeros(len(ts), dtype=np.int8)
    codes[(ts >= validation_start).to_numpy()] = SPLIT_CODES[schema.VALIDATION]
    codes[(ts >= test_start).to_numpy()] = SPLIT_CODES[schema.TEST]
    return codes


def leave_one_out_splits(users: np.ndarray, timestamps: pd.Series) -> np.ndarray:
    """``(n,)`` int8 split code per event: each user's newest event is test, the one before it
    validation, older ones train (see :data:`SPLIT_CODES`).

    Events are ordered by timestamp and, at equal timestamps, by row order (a later row is newer).
    A user with two events has no validation event; a user with one event keeps it in train.
    """
    users = np.asarray(users)
    ts = pd.to_datetime(pd.Series(timestamps), utc=True).astype("datetime64[us, UTC]").astype("int64").to_numpy()
    order = np.lexsort((np.arange(len(users)), ts, users))  # by user, then oldest first
    sorted_users = users[order]
    starts = np.r_[0, np.flatnonzero(sorted_users[1:] != sorted_users[:-1]) + 1]  # first row of each user
    ends = np.r_[starts[1:], len(users)]
    count = np.repeat(ends - starts, ends - starts)  # (n,) events of the row's user, in sorted order
    from_newest = np.repeat(ends, ends - starts) - 1 - np.arange(len(users))  # 0 = the user's newest
    codes = np.zeros(len(users), dtype=np.int8)
    codes[order[(from_newest == 0) & (count >= 2)]] = SPLIT_CODES[schema.TEST]
    codes[order[(from_newest == 1) & (count >= 3)]] = SPLIT_CODES[schema.VALIDATION]
    return codes
