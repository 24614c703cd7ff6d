"""Weighted interactions: events in index space, aggregated to one row per (user, item) pair."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from recsys_lib import schema
from recsys_lib.errors import ConfigError

#: dtypes of every split table (train, validation, test), in column order.
PAIRS_DTYPES: dict[str, str] = {
    schema.USER_IDX: "int64",
    schema.ITEM_IDX: "int64",
    schema.WEIGHT: "float32",
    schema.TIMESTAMP: "datetime64[us, UTC]",
}


def event_weights(event_types: pd.Series, weights: Mapping[str, float]) -> np.ndarray:
    """``(n_events,)`` float64 weight of each event, looked up by its type in ``weights``.

    Raises ConfigError naming ``features.event_weights`` when an event type has no weight.
    """
    types = pd.Series(event_types, dtype="str")
    mapped = types.map(dict(weights))
    if mapped.isna().any():
        missing = sorted(types[mapped.isna()].astype(str).unique())
        raise ConfigError(
            f"features.event_weights has no weight for event types {missing}; "
            f"configured: {sorted(weights)}. Add them to features.event_weights (or drop those events)."
        )
    return mapped.to_numpy(np.float64)


def empty_pairs() -> pd.DataFrame:
    """A split table with no rows and the right columns and dtypes."""
    return pd.DataFrame({c: pd.Series(dtype=d) for c, d in PAIRS_DTYPES.items()})


def aggregate_pairs(events: pd.DataFrame) -> pd.DataFrame:
    """One row per (user_idx, item_idx): weight = sum, timestamp = last (newest) event.

    ``events`` holds user_idx, item_idx, weight (float64, summed before the cast to float32) and
    timestamp per event, in any order. Returns the split table layout of :data:`PAIRS_DTYPES`,
    sorted by (user_idx, item_idx), with a fresh index. ``events`` is not modified.
    """
    if events.empty:
        return empty_pairs()
    grouped = events.groupby([schema.USER_IDX, schema.ITEM_IDX], sort=True)
    weight = grouped[schema.WEIGHT].sum()
    out = pd.DataFrame(
        {
            schema.WEIGHT: weight.to_numpy(np.float32),
            schema.TIMESTAMP: grouped[schema.TIMESTAMP].max().array,
        },
        index=weight.index,
    ).reset_index()
    return out.astype(PAIRS_DTYPES)[list(PAIRS_DTYPES)]
