"""The feature tables one training run consumes, and how they are stored.

Every frame is in index space (``user_idx``, ``item_idx``) given by the two sorted id arrays, which
are the stable encoders saved with the model. Split tables hold one row per (user, item) pair and
window: the summed event weight and the pair's last timestamp in that window.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_lib import schema
from recsys_lib.features.history import UserHistory

if TYPE_CHECKING:
    from recsys_lib.storage import ObjectStore

_TABLES = ("train", "validation", "test", "items")
_WINDOWS = (schema.TRAIN, schema.VALIDATION, schema.TEST)


@dataclass(frozen=True)
class FeatureSet:
    """The tables one training run reads, in index space: id encoders, the catalogue, the train /
    validation / test splits and every purchase; frozen, and saved and loaded as Parquet under a
    prefix."""

    user_ids: np.ndarray
    """(n_users,) raw user ids; position = ``user_idx``. Sorted, so encoding is stable."""
    item_ids: np.ndarray
    """(n_items,) raw item ids (catalogue and event items); position = ``item_idx``. Sorted."""
    items: pd.DataFrame
    """Catalogue aligned to ``item_idx`` (row i is item i).

    Columns: item_idx, item_id, title, category, brand, price, available."""
    train: pd.DataFrame
    """user_idx, item_idx, weight, timestamp: pairs from the oldest events."""
    validation: pd.DataFrame
    """Same columns: pairs from the window after train (per-epoch validation)."""
    test: pd.DataFrame
    """Same columns: pairs from the newest window (final metrics, champion comparison)."""
    purchases: pd.DataFrame = dataclasses.field(default_factory=lambda: empty_purchases())
    """user_idx, item_idx, purchases (events), days (distinct UTC days), first, last (timestamps):
    one row per (user, item) ever bought, over every window (what buy-again reads)."""

    @property
    def n_users(self) -> int:
        """Users in the encoder, with or without training interactions."""
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        """Items in the encoder: the catalogue plus items met only in events."""
        return len(self.item_ids)

    def matrix(self, *splits: str) -> sp.csr_matrix:
        """(n_users, n_items) float32 CSR of summed weights over the given splits (default: train)."""
        frames = [getattr(self, s) for s in (splits or ("train",))]
        df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        m = sp.csr_matrix(
            (
                df[schema.WEIGHT].to_numpy(np.float32),
                (df[schema.USER_IDX].to_numpy(np.int64), df[schema.ITEM_IDX].to_numpy(np.int64)),
            ),
            shape=(self.n_users, self.n_items),
            dtype=np.float32,
        )
        m.sum_duplicates()
        return m

    def history(self, *splits: str) -> UserHistory:
        """Each user's items in the given windows (default: train), ordered by the time of their last
        event in a window; a pair present in two windows appears twice (once per window)."""
        splits = splits or (schema.TRAIN,)
        unknown = [s for s in splits if s not in _WINDOWS]
        if unknown:
            raise ValueError(f"unknown split(s) {unknown}; allowed: {list(_WINDOWS)}")
        frames = [getattr(self, s) for s in _WINDOWS if s in splits]  # oldest window first breaks time ties
        return UserHistory.from_pairs(pd.concat(frames, ignore_index=True), self.n_users, self.n_items)

    def with_validation_in_train(self) -> FeatureSet:
        """The same FeatureSet with the validation pairs moved into train (for a final fit after
        model selection); validation is left empty, test untouched."""
        return dataclasses.replace(
            self,
            train=pd.concat([self.train, self.validation], ignore_index=True),
            validation=self.validation.iloc[:0],
        )

    def item_age_days(self) -> np.ndarray:
        """(n_items,) float64 days from each item's first interaction to the newest interaction of
        any item (the data's end): 0 for catalogue items nobody has touched yet (the newest
        arrivals). A pair's time is its newest event, so an item's first interaction is the
        earliest of its pairs' times."""
        pairs = self._pairs()
        age = np.zeros(self.n_items, dtype=np.float64)
        if pairs.empty:
            return age
        stamps = pairs[schema.TIMESTAMP].array.astype("datetime64[us, UTC]").asi8  # (n_pairs,) us
        first = np.full(self.n_items, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(first, pairs[schema.ITEM_IDX].to_numpy(np.int64), stamps)
        touched = first < np.iinfo(np.int64).max
        age[touched] = (stamps.max() - first[touched]) / 86_400e6
        return age

    def data_end(self) -> pd.Timestamp | None:
        """The newest interaction's time (UTC), None without any: what "now" means for this data."""
        stamps = self._pairs()[schema.TIMESTAMP]
        return None if stamps.empty else pd.Timestamp(stamps.max())

    def _pairs(self) -> pd.DataFrame:
        return pd.concat([self.train, self.validation, self.test], ignore_index=True)

    def unavailable_items(self) -> np.ndarray:
        """Indices of catalogue items flagged ``available = False``."""
        return np.flatnonzero(~self.items[schema.AVAILABLE].to_numpy(bool))

    # --- storage ----------------------------------------------------------------------------
    def save(self, store: ObjectStore, prefix: str) -> dict[str, int]:
        """Write every table as Parquet under ``prefix``; return row counts per table."""
        store.put_frame(prefix + "users.parquet", pd.DataFrame({schema.USER_ID: self.user_ids.astype(str)}))
        counts = {"users": self.n_users, "items": self.n_items}
        for name in (*_TABLES, PURCHASES):
            df = getattr(self, name)
            store.put_frame(prefix + f"{name}.parquet", df)
            counts[name] = len(df)
        store.put_json(prefix + "_meta.json", counts)
        return counts

    @classmethod
    def load(cls, store: ObjectStore, prefix: str) -> FeatureSet:
        """The feature set :meth:`save` wrote under ``prefix``; features saved before buy-again
        existed load with an empty purchase table. Raises ObjectNotFoundError when a table is
        missing."""
        users = store.get_frame(prefix + "users.parquet")
        tables = {name: store.get_frame(prefix + f"{name}.parquet") for name in _TABLES}
        key = prefix + f"{PURCHASES}.parquet"
        bought = store.get_frame(key) if store.exists(key) else empty_purchases()  # features before buy-again
        return cls(
            user_ids=users[schema.USER_ID].to_numpy(dtype=object),
            item_ids=tables["items"][schema.ITEM_ID].to_numpy(dtype=object),
            purchases=bought,
            **tables,
        )


PURCHASES = "purchases"
PURCHASES_DTYPES: dict[str, str] = {
    schema.USER_IDX: "int32",
    schema.ITEM_IDX: "int32",
    "purchases": "int32",
    "days": "int32",
    "first": "datetime64[us, UTC]",
    "last": "datetime64[us, UTC]",
}


def empty_purchases() -> pd.DataFrame:
    """A purchases table with no rows."""
    return pd.DataFrame({c: pd.Series(dtype=d) for c, d in PURCHASES_DTYPES.items()})
