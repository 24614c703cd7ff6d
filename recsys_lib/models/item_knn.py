"""Item-kNN: item-item cosine similarity with shrinkage, scored from the user's recent history.

Fitting binarises the train matrix ``X`` (users x items, 1 where the user met the item), counts
co-occurrences ``C = X^T X`` and keeps, per item, the ``neighbours`` most similar other items::

    sim(i, j) = C_ij / (sqrt(n_i) * sqrt(n_j) + shrinkage)    n_i = number of train users of item i

A user's score of item t is ``sum_h w_h * sim(h, t)`` over their distinct history items h, where the
j-th most recent one (j = 0 newest) weighs ``(1 - recency_decay) ** j``. Everything stays sparse:
the similarity is an ``(n_items, n_items)`` CSR with at most ``neighbours`` entries a row, built a
block of items at a time, so 12k items x 22k users fit in a few seconds and little memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
import scipy.sparse as sp
import torch

from recsys_lib import schema
from recsys_lib.errors import ModelError
from recsys_lib.models.base import Recommender

if TYPE_CHECKING:
    from collections.abc import Callable

    from recsys_lib.config import ModelConfig, TrainConfig
    from recsys_lib.features import FeatureSet, UserHistory
    from recsys_lib.training import RunLogger

_ITEM_BLOCK = 1024
"""Items whose co-occurrence rows are computed at once in :meth:`ItemKNN.fit` (bounds peak memory)."""


class ItemKNN(Recommender):
    """Item-item cosine neighbours with shrinkage (see the module docstring).

    Neighbour ties are broken by the lower item index. There are no epochs, so ``on_epoch_end`` is
    never called and ``logger`` never used. ``similarity`` is the fitted ``(n_items, n_items)``
    float32 CSR, zero diagonal.
    """

    name: ClassVar[str] = "item_knn"
    reason_kind = schema.CO_PURCHASE
    scores_from_history: ClassVar[bool] = True

    def __init__(self, n_users: int, n_items: int, config: ModelConfig):
        super().__init__(n_users, n_items, config)
        self.similarity = sp.csr_matrix((n_items, n_items), dtype=np.float32)

    def fit(
        self,
        features: FeatureSet,
        train: TrainConfig,
        on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
        logger: RunLogger | None = None,
    ) -> ItemKNN:
        """Build the similarity from the binarised train matrix in one pass (no epochs), a block of
        :data:`_ITEM_BLOCK` items at a time; validation and test are not read. Returns self."""
        self.check_fits(features)
        knn = self.config.item_knn
        x = features.matrix("train")  # (n_users, n_items) summed weights
        x.eliminate_zeros()
        x.data[:] = 1.0  # binarise: 1 where the user interacted
        xt = x.T.tocsr()  # (n_items, n_users)
        root_n = np.sqrt(np.diff(xt.indptr).astype(np.float64))  # (n_items,) sqrt(users per item)
        kept_rows, kept_cols, kept_sims = [np.empty(0, np.int64)], [np.empty(0, np.int64)], [np.empty(0, np.float32)]
        for start in range(0, self.n_items, _ITEM_BLOCK):
            counts = (xt[start : start + _ITEM_BLOCK] @ x).tocoo()  # (block, n_items) co-occurrences
            rows, cols = counts.row.astype(np.int64) + start, counts.col.astype(np.int64)
            off_diagonal = rows != cols
            rows, cols, c = rows[off_diagonal], cols[off_diagonal], counts.data[off_diagonal]
            sims = (c / (root_n[rows] * root_n[cols] + knn.shrinkage)).astype(np.float32)
            order, rank = _rank_within_rows(rows, cols, sims)
            kept = order[rank < knn.neighbours]
            kept_rows.append(rows[kept])
            kept_cols.append(cols[kept])
            kept_sims.append(sims[kept])
        rows, cols, sims = np.concatenate(kept_rows), np.concatenate(kept_cols), np.concatenate(kept_sims)
        self.similarity = _csr(rows, cols, sims, self.n_items)  # (n_items, n_items), <= neighbours a row
        return self

    def score_users(self, user_idx: torch.Tensor, history: UserHistory) -> torch.Tensor:
        """``(n,) -> (n, n_items)`` float32: each user's recency-weighted distinct history items
        times the similarity; items without a neighbour in the history score 0. Raises ModelError
        when ``history`` has another item count."""
        if history.n_items != self.n_items:
            raise ModelError(f"history has {history.n_items} items, the item_knn model {self.n_items}")
        users = user_idx.cpu().numpy().astype(np.int64)
        weights = _recency_weights(history, users, self.config.item_knn.recency_decay)  # (n, n_items)
        scores = (weights @ self.similarity).toarray()  # (n, n_items) float32
        return torch.from_numpy(np.ascontiguousarray(scores, dtype=np.float32))

    def similar_items(
        self, item_idx: np.ndarray, k: int, exclude_items: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar items of each item in ``item_idx`` (n,), best first, never the item
        itself nor any of ``exclude_items``.

        Only stored neighbours are returned (at most ``item_knn.neighbours``), ties by the lower item
        index. Returns ``(items int64 (n, k) padded with -1, scores float32 (n, k) padded with -inf)``.
        """
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        item_idx = np.asarray(item_idx, dtype=np.int64)
        block = self.similarity[item_idx].tocoo()  # (n, n_items): row r is item item_idx[r]
        rows, cols, sims = block.row.astype(np.int64), block.col.astype(np.int64), block.data
        keep = cols != item_idx[rows]
        if exclude_items is not None and len(exclude_items):
            keep &= ~np.isin(cols, exclude_items)
        rows, cols, sims = rows[keep], cols[keep], sims[keep]
        order, rank = _rank_within_rows(rows, cols, sims)
        kept = order[rank < k]
        items = np.full((len(item_idx), k), -1, dtype=np.int64)
        scores = np.full((len(item_idx), k), -np.inf, dtype=np.float32)
        items[rows[kept], rank[rank < k]] = cols[kept]
        scores[rows[kept], rank[rank < k]] = sims[kept]
        return items, scores

    def explain(self, user_idx: np.ndarray, items: np.ndarray, history: UserHistory) -> np.ndarray:
        """For each recommended item, the history item with the largest share of its score,
        ``w_h * sim(h, t)`` (ties: the lower item index); -1 for padding or no contribution."""
        users = np.asarray(user_idx, dtype=np.int64)
        weights = _recency_weights(history, users, self.config.item_knn.recency_decay).tocoo()  # (n, n_items)
        n, k = items.shape
        # one candidate per (history entry, recommendation slot) of the same user
        entry = np.repeat(np.arange(weights.nnz), k)
        slot = np.tile(np.arange(k), weights.nnz)
        user = weights.row[entry]
        target = items[user, slot]
        valid = target >= 0
        entry, slot, user, target = entry[valid], slot[valid], user[valid], target[valid]
        source = weights.col[entry].astype(np.int64)
        share = weights.data[entry] * np.asarray(self.similarity[source, target]).ravel()
        positive = share > 0
        slot, user, source, share = slot[positive], user[positive], source[positive], share[positive]
        reasons = np.full((n, k), -1, dtype=np.int64)
        if len(share):
            order = np.lexsort((source, -share, user * k + slot))  # best share first in each slot
            first = np.ones(len(order), dtype=bool)
            keyed = (user * k + slot)[order]
            first[1:] = keyed[1:] != keyed[:-1]
            best = order[first]
            reasons[user[best], slot[best]] = source[best]
        return reasons

    def state(self) -> dict[str, torch.Tensor]:
        """The similarity CSR as ``indptr`` (n_items + 1,), ``indices`` and ``data`` (nnz,) tensors."""
        s = self.similarity
        return {
            "indptr": torch.from_numpy(s.indptr.astype(np.int64)),  # (n_items + 1,)
            "indices": torch.from_numpy(s.indices.astype(np.int64)),  # (nnz,) neighbour item per entry
            "data": torch.from_numpy(s.data.astype(np.float32)),  # (nnz,) similarity per entry
        }

    @classmethod
    def from_state(cls, n_users: int, n_items: int, config: ModelConfig, state: dict[str, torch.Tensor]) -> ItemKNN:
        """Rebuild from :meth:`state`; ModelError naming the problem when a tensor is missing, or
        they do not form a valid ``(n_items, n_items)`` CSR (before any index reaches scipy)."""
        missing = sorted({"indptr", "indices", "data"} - set(state))
        if missing:
            raise ModelError(f"item_knn state lacks {missing}; it needs 'indptr', 'indices' and 'data'")
        indptr, indices, data = (state[k].detach().cpu().numpy() for k in ("indptr", "indices", "data"))
        if indptr.shape != (n_items + 1,):
            raise ModelError(f"item_knn state needs 'indptr' of shape ({n_items + 1},), got {indptr.shape}")
        nnz = int(indptr[-1])
        if indptr[0] != 0 or (np.diff(indptr) < 0).any() or indices.shape != (nnz,) or data.shape != (nnz,):
            raise ModelError(
                f"item_knn state is not a valid CSR: 'indptr' must rise from 0 to nnz={nnz}, and "
                f"'indices' {indices.shape} and 'data' {data.shape} must both have shape ({nnz},)"
            )
        if nnz and (indices.min() < 0 or indices.max() >= n_items):
            raise ModelError(f"item_knn state has 'indices' outside [0, {n_items})")
        model = cls(n_users, n_items, config)
        model.similarity = sp.csr_matrix(
            (data.astype(np.float32), indices.astype(np.int64), indptr.astype(np.int64)), shape=(n_items, n_items)
        )
        return model


def _rank_within_rows(rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order entries by (row, value descending, column) and give each its rank within its row.

    Returns ``(order, rank)``, both (nnz,): ``order`` permutes the entries; ``rank[p]`` is the
    0-based rank of entry ``order[p]`` in its row, so ``order[rank < k]`` is each row's top-k.
    """
    order = np.lexsort((cols, -values, rows))
    sorted_rows = rows[order]
    rank = np.arange(len(order)) - np.searchsorted(sorted_rows, sorted_rows, side="left")
    return order, rank


def _csr(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_items: int) -> sp.csr_matrix:
    """(n_items, n_items) float32 CSR from unique (row, col) entries, columns sorted within rows."""
    order = np.lexsort((cols, rows))
    indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=n_items))].astype(np.int64)
    return sp.csr_matrix(
        (values[order].astype(np.float32), cols[order], indptr), shape=(n_items, n_items), dtype=np.float32
    )


def _recency_weights(history: UserHistory, users: np.ndarray, decay: float) -> sp.csr_matrix:
    """(n, n_items) float32 CSR: row r weighs user ``users[r]``'s distinct history items by recency.

    The j-th most recent distinct item (j = 0 newest; a repeated item counts at its newest
    occurrence) gets ``(1 - decay) ** j``. Users with no history get an empty row.
    """
    ends = history.indptr[users + 1]
    lengths = ends - history.indptr[users]  # (n,)
    rows = np.repeat(np.arange(len(users)), lengths)  # (entries,) output row of each entry
    age = np.arange(len(rows)) - np.repeat(np.cumsum(lengths) - lengths, lengths)  # 0 = newest
    items = history.items[np.repeat(ends, lengths) - 1 - age]
    by_item = np.lexsort((age, items, rows))  # each (row, item) group starts at its newest entry
    newest = np.ones(len(by_item), dtype=bool)
    newest[1:] = (np.diff(rows[by_item]) != 0) | (np.diff(items[by_item]) != 0)
    rows, items, age = rows[by_item][newest], items[by_item][newest], age[by_item][newest]
    order, rank = _rank_within_rows(rows, items, -age.astype(np.float64))  # rank = distinct recency j
    weights = (1.0 - decay) ** rank.astype(np.float64)
    return sp.csr_matrix((weights.astype(np.float32), (rows[order], items[order])), shape=(len(users), history.n_items))
