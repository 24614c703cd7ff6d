"""What each user did before the moment of prediction, in order: the context every model scores from.

A :class:`UserHistory` holds one chronological item sequence per user of an index space, stored
CSR-style (``indptr`` into one flat ``items`` array). Evaluation decides which windows make up the
history (train for validation; train + validation for test), the bundle keeps the full history for
serving, and models read it as they need: a sparse matrix (item-kNN), padded recent sequences
(SASRec, GRU4Rec, two-tower), or not at all (popularity, MF).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_lib import schema


@dataclass(frozen=True)
class UserHistory:
    """Each user's item sequence in CSR layout (``indptr``, ``items``), for ``n_users`` users over
    an index space of ``n_items`` items; a user may meet an item more than once."""

    indptr: np.ndarray
    """(n_users + 1,) int64: user u's items are ``items[indptr[u]:indptr[u + 1]]``."""
    items: np.ndarray
    """(n_entries,) int64 item indices, oldest first within each user."""
    n_items: int

    @property
    def n_users(self) -> int:
        """Users covered, with or without items: ``len(indptr) - 1``."""
        return len(self.indptr) - 1

    @classmethod
    def empty(cls, n_users: int, n_items: int) -> UserHistory:
        """``n_users`` users without any item."""
        return cls(np.zeros(n_users + 1, dtype=np.int64), np.empty(0, dtype=np.int64), n_items)

    @classmethod
    def from_pairs(cls, pairs: pd.DataFrame, n_users: int, n_items: int) -> UserHistory:
        """History from rows of user_idx, item_idx and timestamp, ordered by (user, time, row order).

        Pairs outside ``[0, n_users) x [0, n_items)`` are dropped, so a frame from another index
        space can be passed after mapping unknown ids to -1.
        """
        users = pairs[schema.USER_IDX].to_numpy(np.int64)
        items = pairs[schema.ITEM_IDX].to_numpy(np.int64)
        ts = pd.to_datetime(pairs[schema.TIMESTAMP], utc=True).astype("datetime64[us, UTC]").astype("int64").to_numpy()
        keep = (users >= 0) & (users < n_users) & (items >= 0) & (items < n_items)
        users, items, ts = users[keep], items[keep], ts[keep]
        order = np.lexsort((np.arange(len(users)), ts, users))
        counts = np.bincount(users, minlength=n_users)
        return cls(np.r_[0, np.cumsum(counts)].astype(np.int64), items[order], n_items)

    def lengths(self) -> np.ndarray:
        """(n_users,) number of entries per user."""
        return np.diff(self.indptr)

    def of(self, user: int) -> np.ndarray:
        """User ``user``'s items, oldest first."""
        return self.items[self.indptr[user] : self.indptr[user + 1]]

    def matrix(self) -> sp.csr_matrix:
        """(n_users, n_items) float32 CSR with 1 where the user met the item (repeats count once)."""
        m = sp.csr_matrix(
            (np.ones(len(self.items), np.float32), self.items, self.indptr), shape=(self.n_users, self.n_items)
        )
        m.sum_duplicates()
        m.data[:] = 1.0
        return m

    def padded(self, users: np.ndarray, max_length: int, pad: int = -1) -> np.ndarray:
        """(len(users), max_length) int64: each user's newest ``max_length`` items, right-aligned
        (the newest item in the last column), ``pad`` on the left."""
        users = np.asarray(users, dtype=np.int64)
        starts, ends = self.indptr[users], self.indptr[users + 1]
        length = np.minimum(ends - starts, max_length)  # (n,)
        out = np.full((len(users), max_length), pad, dtype=np.int64)
        col = np.arange(max_length)[None, :]  # (1, L)
        take = col >= max_length - length[:, None]  # (n, L) positions that hold an item
        src = ends[:, None] - (max_length - col)  # (n, L) flat index of the item in that column
        out[take] = self.items[src[take]]
        return out

    def remap(self, user_map: np.ndarray, item_map: np.ndarray, n_users: int, n_items: int) -> UserHistory:
        """This history in another index space: row u goes to ``user_map[u]`` and item i to
        ``item_map[i]`` (-1 drops it); target users that get no row have an empty history."""
        user_of_entry = np.repeat(np.arange(self.n_users), self.lengths())
        pairs = pd.DataFrame(
            {
                schema.USER_IDX: user_map[user_of_entry],
                schema.ITEM_IDX: item_map[self.items] if len(self.items) else self.items,
                schema.TIMESTAMP: pd.to_datetime(np.arange(len(self.items)), unit="us", utc=True),
            }
        )
        return UserHistory.from_pairs(pairs, n_users, n_items)
