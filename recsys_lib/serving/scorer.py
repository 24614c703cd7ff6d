"""A model bundle bound to one FeatureSet, ready to serve top-k to any chunk of its users.

Everything that depends only on the pair (id maps between the two index spaces, every user's
history in the model's index space, the exclusions, the item index) is computed once here, so
scoring a chunk costs only that chunk: the batch export walks millions of users chunk by chunk, and
evaluation serves all test users at once, through the same code.

Models with item vectors (MF, the sequence models, the two-tower) are served by an
:class:`~recsys_lib.search.index.InnerProductIndex` (on the GPU when there is one); the
others (popularity, item-kNN) by their own ``score_users`` and a masked top-k.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from recsys_lib import schema
from recsys_lib.errors import ModelError
from recsys_lib.features import UserHistory
from recsys_lib.search import InnerProductIndex, bounded_chunk
from recsys_lib.serving.ranker import Ranker
from recsys_lib.serving.repurchase import reorders
from recsys_lib.serving.rules import ALLOW, ListRules, interleave_reorders, reason_kinds

if TYPE_CHECKING:
    from recsys_lib.features import FeatureSet
    from recsys_lib.serving.bundle import ModelBundle

ALL_SPLITS = (schema.TRAIN, schema.VALIDATION, schema.TEST)


class BundleScorer:
    """Top-k for the users of ``features`` from ``bundle``, in ``features``' index spaces
    (:meth:`own_users`: for the bundle's own users, in its own index spaces).

    Each user's history is their items in ``history_splits`` of ``features`` (items the model does
    not know are left out): the model scores from it and it is never recommended back, nor are,
    unless ``exclude_unavailable`` is False (offline evaluation), unavailable catalogue items.
    Users the model does not know get its popularity fallback. ``rules`` (over ``features``' items,
    :func:`~recsys_lib.serving.rules.compile_rules`) shape every list: the export and the live
    service pass the shop's; evaluation passes none, so it measures the model alone.
    """

    def __init__(
        self,
        bundle: ModelBundle,
        features: FeatureSet,
        *,
        history_splits: tuple[str, ...] = ALL_SPLITS,
        exclude_unavailable: bool = True,
        rules: ListRules | None = None,
        device: torch.device | str | None = None,
    ):
        model = bundle.model
        user_map = positions(bundle.user_ids, features.user_ids)  # features user -> model user, or -1
        item_map = positions(bundle.item_ids, features.item_ids)  # features item -> model item, or -1
        known = np.flatnonzero(item_map >= 0)
        seen = features.matrix(*history_splits) if history_splits else sp.csr_matrix((features.n_users, 0))
        rebuy = sp.csr_matrix(seen.shape, dtype=np.float32)  # bought items the model may list again
        if rules is not None and rules.repeat is not None and history_splits:
            seen, rebuy = without_repeats(seen, features.purchases, rules.repeat == ALLOW)
        to_model = sp.csr_matrix(  # (features items, model items) 0/1 selection
            (np.ones(len(known), np.float32), (known, item_map[known])), shape=(seen.shape[1], model.n_items)
        )
        unavailable = item_map[features.unavailable_items()] if exclude_unavailable else np.empty(0, np.int64)
        if history_splits:
            history = features.history(*history_splits).remap(user_map, item_map, model.n_users, model.n_items)
        else:  # nothing read: every user starts from an empty history
            empty = pd.DataFrame({schema.USER_IDX: [], schema.ITEM_IDX: [], schema.TIMESTAMP: []})
            history = UserHistory.from_pairs(empty, model.n_users, model.n_items)
        model_rules = rules.remap(item_map, model.n_items) if rules is not None else None
        self._bind(
            bundle,
            user_map,
            item_map,
            (seen @ to_model).tocsr(),
            history,
            unavailable[unavailable >= 0],
            device,
            model_rules,
        )
        self.user_ids, self.item_ids = features.user_ids, features.item_ids
        if rebuy.nnz:
            self.rebuy = (rebuy @ to_model).tocsr()  # (features users, model items)
        if rules is not None and rules.buy_again_share > 0:
            self._bind_reorders(reorders(features, rules, ALLOW), item_map, features.n_users, rules.buy_again_share)

    @classmethod
    def own_users(cls, bundle: ModelBundle, device: torch.device | str | None = None) -> BundleScorer:
        """``bundle`` serving the users it was trained on from the history it holds, in its own
        index spaces, plus one more user row, ``bundle.model.n_users``: someone it has never met
        (no history, popularity fallback). Nothing is unavailable: a bundle knows no catalogue."""
        n_users, n_items = bundle.model.n_users, bundle.model.n_items
        scorer = cls.__new__(cls)
        seen = sp.vstack([bundle.seen, sp.csr_matrix((1, n_items), dtype=np.float32)]).tocsr()
        scorer._bind(
            bundle,
            np.append(np.arange(n_users), -1),
            np.arange(n_items),
            seen,
            bundle.history,
            np.empty(0, np.int64),
            device,
        )
        scorer.user_ids = np.append(np.asarray(bundle.user_ids, dtype=object), [None])  # [n_users]: nobody
        scorer.item_ids = bundle.item_ids
        return scorer

    def _bind(
        self,
        bundle: ModelBundle,
        user_map: np.ndarray,
        item_map: np.ndarray,
        seen: sp.csr_matrix,
        history: UserHistory,
        unavailable: np.ndarray,
        device: torch.device | str | None,
        rules: ListRules | None = None,
    ) -> None:
        """Hold what scoring needs: ``user_map``/``item_map`` (served index -> model index or -1),
        ``seen`` (served users x model items), ``history`` (model users, model items) and the
        :class:`Ranker` of ``rules`` (model items; None: no rule). Items a rule filters out join
        ``unavailable``: never listed, by any path (top-k, similar items, re-ranking)."""
        model = bundle.model
        self.bundle, self.model = bundle, model
        self.user_map = np.asarray(user_map, dtype=np.int64)
        item_map = np.asarray(item_map, dtype=np.int64)
        self.item_map = np.append(item_map, -1)  # [-1] maps padding to padding
        known = np.flatnonzero(item_map >= 0)
        self.back = np.full(model.n_items + 1, -1, dtype=np.int64)  # model item -> served item ([-1] = -1)
        self.back[item_map[known]] = known
        self.seen = seen
        self.seen.data[:] = 1.0
        self.rebuy = sp.csr_matrix(seen.shape, dtype=np.float32)  # re-orders allowed back: none unless set
        rules = rules if rules is not None else ListRules.none(model.n_items)
        never = rules.blocked.copy()
        never[np.asarray(unavailable, dtype=np.int64)] = True
        self.unavailable = np.flatnonzero(never)
        self.history = history
        self.fallback = torch.from_numpy(bundle.fallback_scores)
        vectors = model.item_vectors()
        self._dim = 0 if vectors is None else vectors.shape[1]
        self.ranker = Ranker(rules, never, vectors, model.item_bias() if vectors is not None else None, device)
        self.index: InnerProductIndex | None = self.ranker.index  # None: the model has no item vectors
        self._reorders: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # see _bind_reorders
        self._share = 0.0

    def _bind_reorders(self, listed: pd.DataFrame | None, item_map: np.ndarray, n_users: int, share: float) -> None:
        """Hold each user's likeliest allowed re-orders (``listed``, :func:`reorders` rows) for
        :meth:`blend`, as (indptr over users, model items, repurchase scores)."""
        if listed is None or listed.empty:
            return
        items = item_map[listed[schema.ITEM_IDX].to_numpy(np.int64)]
        known = items >= 0  # an item the model does not know cannot be placed in its lists
        users = listed[schema.USER_IDX].to_numpy(np.int64)[known]
        indptr = np.searchsorted(users, np.arange(n_users + 1))  # rows come by user then rank
        self._reorders = (indptr, items[known], listed[schema.SCORE].to_numpy(np.float32)[known])
        self._share = share

    def blend_depth(self, k: int) -> int:
        """How deep :meth:`blend` needs the model's lists to fill ``k`` places: ``k``, plus twice
        the places re-orders may take (each can also take a place or a category's room the model
        list counted on)."""
        return k if self._reorders is None else k + 2 * int(np.ceil(self._share * k))

    def blend(
        self, users: np.ndarray, items: np.ndarray, scores: np.ndarray, exclude: sp.csr_matrix, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The lists of ``users`` (rows of this scorer, -1 for none) with their likeliest re-orders
        interleaved (``recommend.buy_again_share``; :func:`~recsys_lib.serving.rules.interleave_reorders`),
        cut to ``k``: ``items``/``scores`` are the ranker's (model items, :meth:`blend_depth` deep),
        ``exclude`` (n, model items) what each row never lists. Without re-orders to place, the lists
        cut to ``k``."""
        if self._reorders is None:
            return items[:, :k], scores[:, :k]
        indptr, again, again_scores = self._reorders
        users = np.asarray(users, dtype=np.int64)
        rows = np.flatnonzero(users >= 0)
        rows = rows[indptr[users[rows] + 1] > indptr[users[rows]]]  # the rows with a re-order to place
        out_items, out_scores = items[:, :k].copy(), scores[:, :k].copy()
        if len(rows):
            spans = [(indptr[u], indptr[u + 1]) for u in users[rows]]
            blended = interleave_reorders(
                items[rows],
                scores[rows],
                [(again[lo:hi], again_scores[lo:hi]) for lo, hi in spans],
                self._share,
                k,
                self.ranker.rules,
                [set(exclude[r].indices.tolist()) for r in rows],
            )
            out_items[rows], out_scores[rows] = blended
        return out_items, out_scores

    def user_vectors(self, users: np.ndarray) -> np.ndarray | None:
        """(n_known, d) vectors of the ``users`` the model knows, in order (None for models
        without vectors): scored from each user's history in this scorer. Pass them to :meth:`topk`
        to reuse them, e.g. when the export also writes them for a re-ranker."""
        model_users = self.user_map[np.asarray(users, dtype=np.int64)]
        known = model_users[model_users >= 0]
        if self.index is None:
            return None
        if not len(known):
            return np.empty((0, self._dim), dtype=np.float32)
        return self.model.user_vectors(known, self.history)

    def topk(
        self, users: np.ndarray, k: int, *, user_vectors: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k for ``users`` (user rows of this scorer), computed as one chunk: memory grows with
        ``len(users) * n_items``. ``user_vectors`` are :meth:`user_vectors` of the same ``users``,
        if the caller has them. Returns ``(items, scores)`` of shape (n, k): item rows of this
        scorer (-1 padding) and float32 scores (-inf padding)."""
        users = np.asarray(users, dtype=np.int64)
        model_users = self.user_map[users]
        items = np.full((len(users), k), -1, dtype=np.int64)
        scores = np.full((len(users), k), -np.inf, dtype=np.float32)
        known = np.flatnonzero(model_users >= 0)
        depth = self.blend_depth(k)  # k without re-orders to interleave
        if len(known):
            seen = self.seen[users[known]]
            if self.index is not None:
                vectors = self.user_vectors(users) if user_vectors is None else user_vectors
                if vectors is None:
                    raise ModelError(f"{self.model.name} has item vectors but no user vectors")
                top, top_scores = self.ranker.search(vectors, depth, seen)
            else:
                with torch.no_grad():
                    s = self.model.score_users(torch.from_numpy(model_users[known]), self.history).float()
                top, top_scores = self.ranker.rows(s, seen, depth)
            top, top_scores = self.blend(users[known], top, top_scores, seen, k)
            items[known], scores[known] = self.back[top], top_scores
        cold = np.flatnonzero(model_users < 0)
        if len(cold):
            seen = self.seen[users[cold]]
            found, found_scores = self.ranker.rows(self.fallback.expand(len(cold), -1), seen, depth)
            found, found_scores = self.blend(users[cold], found, found_scores, seen, k)
            items[cold], scores[cold] = self.back[found], found_scores
        return items, scores

    def topk_in_chunks(self, users: np.ndarray, k: int, chunk_size: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`topk` of ``users``, ``chunk_size`` at a time (fewer when their score rows would pass
        :data:`~recsys_lib.search.topk.SCORE_CHUNK_BYTES`): memory bounded by the chunk."""
        chunk_size = bounded_chunk(chunk_size, self.model.n_items)
        users = np.asarray(users, dtype=np.int64)
        items = np.empty((len(users), k), dtype=np.int64)
        scores = np.empty((len(users), k), dtype=np.float32)
        for start in range(0, len(users), chunk_size):
            end = start + chunk_size
            items[start:end], scores[start:end] = self.topk(users[start:end], k)
        return items, scores

    def release(self) -> None:
        """Free the score buffers kept for the next chunk (see InnerProductIndex.release)."""
        for index in (self.ranker.index, self.ranker.boosted_index):
            if index is not None:
                index.release()

    def reasons(self, users: np.ndarray, items: np.ndarray) -> np.ndarray | None:
        """For :meth:`topk`'s ``items`` (n, k) of ``users``, the history item (an item row of this
        scorer) each was recommended because of, -1 where there is none (new users, padding); None when
        the model cannot explain (see ``Recommender.explain``)."""
        users = np.asarray(users, dtype=np.int64)
        model_users = self.user_map[users]
        known = np.flatnonzero(model_users >= 0)
        out = np.full(items.shape, -1, dtype=np.int64)
        if not len(known):
            return out
        found = self.model.explain(model_users[known], self.item_map[items[known]], self.history)
        if found is None:
            return None
        out[known] = self.back[found]
        return out

    def reason_kinds(self, users: np.ndarray, items: np.ndarray, reasons: np.ndarray | None) -> np.ndarray:
        """(n, k) object: why each of :meth:`topk`'s ``items`` is listed (``reason_kind``; see
        :func:`~recsys_lib.serving.rules.reason_kinds`), ``reasons`` being :meth:`reasons`'."""
        users = np.asarray(users, dtype=np.int64)
        cold = self.user_map[users] < 0
        model_items = self.item_map[items]
        return reason_kinds(
            model_items, reasons, self.model.reason_kind, cold, self.ranker.rules, self.rebought(users, model_items)
        )

    def rebought(self, users: np.ndarray, model_items: np.ndarray) -> np.ndarray | None:
        """(n, k) bool: which ``model_items`` (n, k) of ``users`` (rows of this scorer; -1 none) are
        re-orders the rules allow back into the list; None when none can be."""
        if not self.rebuy.nnz:
            return None
        known = np.asarray(users) >= 0
        out = np.zeros(model_items.shape, dtype=bool)
        rows = self.rebuy[np.asarray(users)[known]].tocsr()  # sparse: never a dense users x catalogue block
        width = rows.shape[1]
        stored = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr)) * width + rows.indices
        asked = np.arange(rows.shape[0])[:, None] * width + np.maximum(model_items[known], 0)
        out[known] = np.isin(asked, stored)
        return out & (model_items >= 0)

    def with_unavailable(self, seen: sp.csr_matrix) -> sp.csr_matrix:
        """``seen`` rows plus every unavailable item, for the paths without an index."""
        if not len(self.unavailable):
            return seen
        n = seen.shape[0]
        extra = sp.csr_matrix(
            (
                np.ones(n * len(self.unavailable), np.float32),
                np.tile(self.unavailable, n),
                np.arange(n + 1) * len(self.unavailable),
            ),
            shape=seen.shape,
        )
        return (seen + extra).tocsr()


def without_repeats(
    seen: sp.csr_matrix, purchases: pd.DataFrame, allowed: np.ndarray
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """``seen`` (users x items) without the pairs a user bought of ``allowed`` items (bool, n_items),
    the re-orders ``recommend.repeat_purchases: allow`` lets the model list again; and those pairs."""
    items = purchases[schema.ITEM_IDX].to_numpy(np.int64)
    mine = allowed[items]
    bought = sp.csr_matrix(
        (np.ones(int(mine.sum()), np.float32), (purchases[schema.USER_IDX].to_numpy(np.int64)[mine], items[mine])),
        shape=seen.shape,
    )
    bought.data[:] = 1.0
    out = (seen - seen.multiply(bought)).tocsr()
    out.eliminate_zeros()
    return out, bought


def positions(reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index of each of ``values`` in ``reference`` (sorted or not), -1 where absent."""
    index = pd.Index(np.asarray(reference).astype(str))
    return np.asarray(index.get_indexer(pd.Index(np.asarray(values).astype(str))), dtype=np.int64)
