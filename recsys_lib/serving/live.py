"""One shopper's request, answered from a :class:`~recsys_lib.serving.scorer.BundleScorer`: the
scorer the batch export uses, so a request without a session gets exactly the exported row.

A request may carry ``recent_items`` (what the shopper did in this session, oldest first). Models
that score from a history alone (``Recommender.scores_from_history``: item-kNN, GRU4Rec, SASRec,
two-tower) score the user's stored history followed by those items, so a visitor the model has
never met is personalised by the session alone. MF has a learned vector per user: a known user
keeps it (the session is only excluded), a new visitor gets the mean of the session items' vectors
(folding the session in). Popularity, and anyone with neither history nor a session, get the
bundle's popularity fallback. Available items only; the user's history, the session and
``exclude`` are never recommended.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from recsys_lib.features import UserHistory
from recsys_lib.search import topk_excluding
from recsys_lib.serving.scorer import BundleScorer

#: Where a request's list came from.
MODEL, SESSION, POPULARITY = "model", "session", "popularity"


@dataclass(frozen=True)
class Ranked:
    """A ranked list for one request: item ids best first, their scores, the history item each is
    recommended because of (None where the model cannot say), and how the list was made."""

    item_ids: list[str]
    scores: list[float | None]
    """None for a re-ranked candidate the model does not score (unknown or unavailable)."""
    reasons: list[str | None]
    source: str
    ignored: list[str]
    """Request items (``recent_items``, ``exclude``, ``candidates``) the model does not know."""


@dataclass(frozen=True)
class _Context:
    """Who is asking, in the model's index space."""

    row: int  # the scorer's user row, -1 for a user it does not know
    model_user: int  # the model's user index, -1 for a user the model does not know
    session: np.ndarray  # model item indices of the known recent items, oldest first
    excluded: np.ndarray  # model item indices never to return: history, session, exclude
    ignored: list[str]


class LiveScorer:
    """Answers :meth:`recommend`, :meth:`rerank` and :meth:`similar` for single users, one at a
    time (a lock: the index scores into buffers of its own)."""

    def __init__(self, scorer: BundleScorer):
        self.scorer = scorer
        self.model = scorer.model
        self.item_ids = np.asarray(scorer.bundle.item_ids).astype(str)
        self._items = {item: i for i, item in enumerate(self.item_ids.tolist())}  # a request looks up a few
        users = np.asarray(scorer.user_ids, dtype=object)
        self._users = pd.Index(np.where(pd.isna(users), "\0nobody", users.astype(str)))  # one lookup per request
        self._vectors = self.model.item_vectors()  # cached: sequence and two-tower models compute them
        self._lock = threading.Lock()

    @property
    def n_items(self) -> int:
        """Items the model scores."""
        return self.model.n_items

    @property
    def n_available(self) -> int:
        """Items a request may be recommended."""
        return self.model.n_items - len(self.scorer.unavailable)

    def knows_item(self, item_id: str) -> bool:
        return str(item_id) in self._items

    def _item_index(self, item_ids: list[str]) -> np.ndarray:
        """The model's index of each item id, -1 where unknown."""
        return np.fromiter((self._items.get(str(i), -1) for i in item_ids), dtype=np.int64, count=len(item_ids))

    def _user_row(self, user_id: str | None) -> int:
        """The scorer's row of ``user_id``, -1 where unknown."""
        if user_id is None:
            return -1
        try:
            row = self._users.get_loc(str(user_id))
        except KeyError:
            return -1
        return row if isinstance(row, int) else -1  # a duplicated id never happens: ids are unique

    def recommend(
        self, user_id: str | None, recent_items: list[str], k: int, exclude: list[str] | None = None
    ) -> Ranked:
        """The top ``k`` available items for this user and session, best first."""
        with self._lock:
            ctx = self._context(user_id, recent_items, exclude or [])
            kind, vector, scores = self._user(ctx)
            exclusion = self._exclusion(ctx.excluded)
            if vector is not None and self.scorer.index is not None:
                top, top_scores = self.scorer.index.search(vector, k, exclusion)
            else:
                if scores is None:
                    scores = self.scorer.fallback[None, :]
                top_t, scores_t = topk_excluding(scores, self.scorer.with_unavailable(exclusion), k)
                top, top_scores = top_t.numpy(), scores_t.numpy()
            top, top_scores = top[0], top_scores[0]
            keep = top >= 0
            top, top_scores = top[keep], top_scores[keep]
            reasons = self._reasons(ctx, kind, top)
        return Ranked(
            [str(i) for i in self.item_ids[top]], list(top_scores.astype(float).tolist()), reasons, kind, ctx.ignored
        )

    def rerank(self, user_id: str | None, recent_items: list[str], candidates: list[str]) -> Ranked:
        """``candidates`` in this user's order: the ones the model knows and may recommend, by the
        score :meth:`recommend` gives them (ties keep the incoming order), then the others in their
        incoming order. With neither a known user nor a session the list comes back unchanged."""
        with self._lock:
            ctx = self._context(user_id, recent_items, [])
            kind, vector, scores = self._user(ctx)
            wanted = self._item_index(candidates)
            known = wanted >= 0
            if kind == POPULARITY:
                values = np.full(len(candidates), -np.inf, dtype=np.float32)
            elif vector is not None and self.scorer.index is not None:
                values = self.scorer.index.score(vector, wanted[None, :])[0]
            else:
                assert scores is not None
                values = np.where(known, scores[0].numpy()[np.clip(wanted, 0, None)], -np.inf).astype(np.float32)
            values[np.isin(wanted, self.scorer.unavailable)] = -np.inf
            ranked = np.flatnonzero(np.isfinite(values))
            ranked = ranked[np.argsort(-values[ranked], kind="stable")]
            rest = np.setdiff1d(np.arange(len(candidates)), ranked, assume_unique=True)  # sorted: incoming order
            order = np.concatenate([ranked, rest])
        ignored = [str(c) for c, k in zip(candidates, known, strict=True) if not k]
        return Ranked(
            [str(candidates[i]) for i in order],
            [float(values[i]) if np.isfinite(values[i]) else None for i in order],
            [None] * len(order),
            kind,
            ctx.ignored + ignored,
        )

    def similar(self, item_id: str, k: int) -> Ranked | None:
        """The ``k`` available items nearest ``item_id`` (item-kNN co-occurrence or vector cosine);
        None when the model has no notion of item similarity (popularity). KeyError for an item the
        model does not know."""
        idx = self._items.get(str(item_id), -1)
        if idx < 0:
            raise KeyError(item_id)
        with self._lock:
            found = self.model.similar_items(np.array([idx]), k, exclude_items=self.scorer.unavailable)
        if found is None:
            return None
        items, scores = found[0][0], found[1][0]
        keep = items >= 0
        return Ranked(
            [str(i) for i in self.item_ids[items[keep]]],
            scores[keep].astype(float).tolist(),
            [str(item_id)] * int(keep.sum()),
            MODEL,
            [],
        )

    # --- the request in the model's index space -----------------------------------------------------
    def _context(self, user_id: str | None, recent_items: list[str], exclude: list[str]) -> _Context:
        row = self._user_row(user_id)
        model_user = int(self.scorer.user_map[row]) if row >= 0 else -1
        recent = self._item_index(recent_items)
        excluded = self._item_index(exclude)
        ignored = [str(i) for i, j in zip([*recent_items, *exclude], [*recent, *excluded], strict=True) if j < 0]
        session = recent[recent >= 0].astype(np.int64)
        history = self.scorer.seen[row].indices if row >= 0 else np.empty(0, np.int64)
        never = np.unique(np.concatenate([history, session, excluded[excluded >= 0]]).astype(np.int64))
        return _Context(row, model_user, session, never, ignored)

    def _user(self, ctx: _Context) -> tuple[str, np.ndarray | None, torch.Tensor | None]:
        """How this request is scored: ``(source, user vector (1, d) or None, scores (1, n_items)
        or None)``; both None means the popularity fallback."""
        model = self.model
        if len(ctx.session) and model.scores_from_history:
            stored = self.scorer.history.of(ctx.model_user) if ctx.model_user >= 0 else np.empty(0, np.int64)
            sequence = np.concatenate([stored, ctx.session]).astype(np.int64)
            one = UserHistory(np.array([0, len(sequence)], dtype=np.int64), sequence, model.n_items)
            return SESSION, *self._score(np.array([0]), one)
        if ctx.model_user >= 0:
            return MODEL, *self._score(np.array([ctx.model_user]), self.scorer.history)
        if len(ctx.session) and self._vectors is not None:  # MF: fold the session in
            return SESSION, self._vectors[ctx.session].mean(axis=0, keepdims=True), None
        return POPULARITY, None, None

    def _score(self, users: np.ndarray, history: UserHistory) -> tuple[np.ndarray | None, torch.Tensor | None]:
        if self.scorer.index is not None:
            return self.model.user_vectors(users, history), None
        with torch.no_grad():
            return None, self.model.score_users(torch.from_numpy(users), history).float()

    def _exclusion(self, items: np.ndarray) -> sp.csr_matrix:
        """One row over the model's items with ``items`` set."""
        data = np.ones(len(items), dtype=np.float32)
        return sp.csr_matrix((data, items, np.array([0, len(items)])), shape=(1, self.model.n_items))

    def _reasons(self, ctx: _Context, kind: str, items: np.ndarray) -> list[str | None]:
        """The history item each recommended item is there because of, where the model can say."""
        if kind == POPULARITY or not len(items):
            return [None] * len(items)
        if kind == SESSION and self.model.scores_from_history:
            stored = self.scorer.history.of(ctx.model_user) if ctx.model_user >= 0 else np.empty(0, np.int64)
            sequence = np.concatenate([stored, ctx.session]).astype(np.int64)
            history, user = UserHistory(np.array([0, len(sequence)]), sequence, self.model.n_items), 0
        elif ctx.model_user >= 0:
            history, user = self.scorer.history, ctx.model_user
        else:
            return [None] * len(items)
        found = self.model.explain(np.array([user]), items[None, :], history)
        if found is None:
            return [None] * len(items)
        return [str(self.item_ids[i]) if i >= 0 else None for i in found[0]]
