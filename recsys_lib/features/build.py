"""``build_features``: canonical events and catalogue -> the FeatureSet one training run consumes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys_lib import schema
from recsys_lib.config import FeaturesConfig
from recsys_lib.errors import DataValidationError
from recsys_lib.features.encoders import encode_ids, fit_ids
from recsys_lib.features.featureset import PURCHASES_DTYPES, FeatureSet, empty_purchases
from recsys_lib.features.interactions import aggregate_pairs, event_weights
from recsys_lib.features.split import SPLIT_CODES, assign_splits, leave_one_out_splits, temporal_cutoffs

#: The event columns :func:`build_features` reads (the features task decodes only these).
EVENT_COLUMNS = [schema.USER_ID, schema.ITEM_ID, schema.EVENT_TYPE, schema.TIMESTAMP]
_CATALOGUE_COLUMNS = (schema.TITLE, schema.CATEGORY, schema.BRAND, schema.PRICE, schema.AVAILABLE)


def align_catalogue(items: pd.DataFrame, item_ids: np.ndarray) -> pd.DataFrame:
    """Catalogue rows in ``item_ids`` order: item_idx, item_id, title, category, brand, price, available.

    Items absent from ``items`` (seen only in events) and optional columns absent from ``items``
    are null, except ``available``, which defaults to True. Raises DataValidationError when
    ``items`` repeats an item_id.
    """
    ids = pd.Series(items[schema.ITEM_ID], dtype="str")
    if ids.duplicated().any():
        examples = ids[ids.duplicated()].head(5).tolist()
        raise DataValidationError(f"items has duplicate item_id values, e.g. {examples}; item_id must be unique")
    rows = pd.Index(ids).get_indexer(pd.Index(item_ids, dtype="str"))  # (n_items,) row in items or -1
    out = pd.DataFrame({schema.ITEM_IDX: np.arange(len(item_ids), dtype=np.int64), schema.ITEM_ID: item_ids})
    for column in _CATALOGUE_COLUMNS:
        values = items[column].to_numpy(dtype=object) if column in items else np.full(len(items), None, object)
        out[column] = np.where(rows >= 0, values[np.maximum(rows, 0)] if len(items) else None, None)
    out[schema.AVAILABLE] = out[schema.AVAILABLE].fillna(True)
    return out.astype({schema.ITEM_ID: "str", **{c: schema.ITEMS_DTYPES[c] for c in _CATALOGUE_COLUMNS}})


def index_events(
    events: pd.DataFrame, user_ids: np.ndarray, item_ids: np.ndarray, config: FeaturesConfig
) -> pd.DataFrame:
    """Events in index space: user_idx and item_idx (int32), weight (float64), timestamp (UTC, us),
    and the split code of ``config.split`` (temporal cut-offs or leave-one-out per user)."""
    timestamps = pd.to_datetime(events[schema.TIMESTAMP], utc=True).astype("datetime64[us, UTC]")
    user_idx = encode_ids(user_ids, events[schema.USER_ID]).astype(np.int32)
    if config.split == "leave_one_out":
        splits = leave_one_out_splits(user_idx, timestamps)
    else:
        splits = assign_splits(
            timestamps, temporal_cutoffs(timestamps, config.validation_fraction, config.test_fraction)
        )
    return pd.DataFrame(
        {
            schema.USER_IDX: user_idx,
            schema.ITEM_IDX: encode_ids(item_ids, events[schema.ITEM_ID]).astype(np.int32),
            schema.WEIGHT: event_weights(events[schema.EVENT_TYPE], config.event_weights),
            schema.TIMESTAMP: timestamps.array,
            schema.SPLIT: splits,
        }
    )


def preference_events(events: pd.DataFrame, config: FeaturesConfig) -> pd.DataFrame:
    """``events`` without the types weighted 0 (impressions and clicks by default): those record
    what was shown, not what the shopper wanted. ``events`` itself when nothing is dropped (no copy)."""
    unweighted = [t for t, w in config.event_weights.items() if w == 0]
    if not unweighted:
        return events
    keep = ~events[schema.EVENT_TYPE].isin(unweighted).to_numpy()
    return events if keep.all() else events[keep].reset_index(drop=True)


def build_features(events: pd.DataFrame, items: pd.DataFrame, config: FeaturesConfig) -> FeatureSet:
    """Encoders, weighted pair tables per window and the aligned catalogue.

    ``events`` and ``items`` are canonical, validated tables (DESIGN.md section 3); neither is
    modified. Users come from events; items are the catalogue plus any item seen only in events.
    Events of types weighted 0 (impressions, clicks) are left out (:func:`preference_events`).
    Raises ConfigError for an event type without a weight, DataValidationError for no events or
    duplicate catalogue ids.
    """
    bought = events[events[schema.EVENT_TYPE].to_numpy() == schema.PURCHASE]
    events = preference_events(events, config)
    if events.empty:
        raise DataValidationError(
            "events is empty (or holds only event types weighted 0 in features.event_weights, such as "
            "impressions): there is nothing to build features from"
        )
    user_ids = fit_ids(events[schema.USER_ID])
    item_ids = fit_ids(items[schema.ITEM_ID], events[schema.ITEM_ID])
    indexed = index_events(events, user_ids, item_ids, config)
    split = indexed.pop(schema.SPLIT).to_numpy()
    pairs = {name: aggregate_pairs(indexed[split == code]) for name, code in SPLIT_CODES.items()}  # a window at a time
    return FeatureSet(
        user_ids=user_ids,
        item_ids=item_ids,
        items=align_catalogue(items, item_ids),
        train=pairs[schema.TRAIN],
        validation=pairs[schema.VALIDATION],
        test=pairs[schema.TEST],
        purchases=purchase_pairs(bought, user_ids, item_ids),
    )


def purchase_pairs(bought: pd.DataFrame, user_ids: np.ndarray, item_ids: np.ndarray) -> pd.DataFrame:
    """One row per (user, item) in purchase events ``bought``: how many purchases, on how many
    distinct UTC days, the first and the last (the features' purchases table)."""
    if bought.empty:
        return empty_purchases()
    stamps = pd.to_datetime(bought[schema.TIMESTAMP], utc=True).astype("datetime64[us, UTC]")
    frame = pd.DataFrame(
        {
            schema.USER_IDX: encode_ids(user_ids, bought[schema.USER_ID]).astype(np.int32),
            schema.ITEM_IDX: encode_ids(item_ids, bought[schema.ITEM_ID]).astype(np.int32),
            "ts": stamps.to_numpy(),
            "day": stamps.dt.floor("D").to_numpy(),
        }
    )
    grouped = frame.groupby([schema.USER_IDX, schema.ITEM_IDX], sort=True)
    out = pd.DataFrame(
        {
            "purchases": grouped.size(),
            "days": grouped["day"].nunique(),
            "first": grouped["ts"].min(),
            "last": grouped["ts"].max(),
        }
    ).reset_index()
    return out.astype(PURCHASES_DTYPES)[list(PURCHASES_DTYPES)]
