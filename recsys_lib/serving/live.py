"""One shopper's request, answered from a :class:`~recsys_lib.serving.scorer.BundleScorer`: the
scorer the batch export uses, so a request without a session gets exactly the exported row.

A request may carry ``recent_items`` (what the shopper did in this session, oldest first). Models
that score from a history alone (``Recommender.scores_from_history``: item-kNN, GRU4Rec, SASRec,
two-tower) score the user's stored history followed by those items, so a visitor the model has
never met is personalised by the session alone. MF has a learned vector per user: a known user
keeps it (the session is only excluded), a new visitor gets the mean of the session items' vectors
(folding the session in). A known user without a session is scored with the vector the export
published for them (:class:`UserVectors`) when the service has it: a neural encoder run on one
user rounds its float32 bits differently from the export's batch, the published vector does not.
Popularity, and anyone with neither history nor a session, get the bundle's popularity fallback.
Available items only; the user's history, the session and ``exclude`` are never recommended.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from recsys_lib import schema
from recsys_lib.features import UserHistory
from recsys_lib.serving.rules import reason_kinds
from recsys_lib.serving.scorer import BundleScorer

#: Where a request's list came from (``purchases``: the shopper's own, for ``buy_again``).
MODEL, SESSION, POPULARITY, PURCHASES = "model", "session", "popularity", "purchases"


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
    reason_kinds: list[str | None] = field(default_factory=list)
    """Why each item is listed (``co_purchase``, ``similar_item``, ``popular``, ``new_arrival``,
    ``buy_again``, ``rule``; see :data:`~recsys_lib.schema.REASON_KINDS`), as the export's ``reason_kind``."""


@dataclass(frozen=True)
class UserVectors:
    """The user vectors an export published (its ``user_embeddings``), by scorer user row."""

    row_of: np.ndarray
    """(n users of the scorer,) int64: each user's row of :attr:`vectors`, -1 for none."""
    vectors: np.ndarray
    """(m, d) float32."""
    source: str
    """Where they come from, for ``/healthz`` and logs (e.g. ``user_embeddings of 2026-10-21``)."""

    @classmethod
    def align(cls, user_ids: np.ndarray, ids: np.ndarray, vectors: np.ndarray, source: str) -> UserVectors:
        """``vectors`` (row j is user ``ids[j]``) for the users ``user_ids`` (the scorer's, in the
        export's id space: pseudonymised when the export is)."""
        row_of = pd.Index(np.asarray(ids).astype(str)).get_indexer(np.asarray(user_ids).astype(str))
        return cls(row_of.astype(np.int64), np.ascontiguousarray(vectors, dtype=np.float32), source)


@dataclass(frozen=True)
class Request:
    """One ``/recommend`` request: who, their session (oldest first), how many, what never."""

    user_id: str | None
    recent_items: list[str]
    k: int
    exclude: list[str]


@dataclass(frozen=True)
class _Context:
    """Who is asking, in the model's index space."""

    row: int  # the scorer's user row, -1 for a user the features do not know
    model_user: int  # the model's user index, -1 for a user the model does not know
    session: np.ndarray  # model item indices of the known recent items, oldest first
    excluded: np.ndarray  # model item indices never to return: history, session, exclude
    ignored: list[str]


@dataclass(frozen=True)
class _Scored:
    """Which requests (``at``) the model scored, as which rows (``users``) of which history."""

    at: list[int]
    users: np.ndarray
    history: UserHistory


class LiveScorer:
    """Answers :meth:`recommend` (or :meth:`recommend_many` for a batch of requests), :meth:`rerank`
    and :meth:`similar`, one call at a time (a lock: the index scores into buffers of its own), and
    :meth:`buy_again` from ``reorders``: the export's ``buy_again`` rows
    (:func:`~recsys_lib.serving.repurchase.reorders` over the scorer's features), None when no item
    has the ``separate`` repeat policy. ``user_vectors``: the export's published user vectors of
    the same model version and features, for known users' requests without a session (ignored for
    a model without vectors)."""

    def __init__(
        self, scorer: BundleScorer, reorders: pd.DataFrame | None = None, user_vectors: UserVectors | None = None
    ):
        self.scorer = scorer
        self._reorders = reorders
        if reorders is not None:  # rows by user then rank: each user's rows start where searchsorted says
            self._reorder_users = reorders[schema.USER_IDX].to_numpy(np.int64)
        self.model = scorer.model
        self.item_ids = np.asarray(scorer.bundle.item_ids).astype(str)
        self._items = {item: i for i, item in enumerate(self.item_ids.tolist())}  # a request looks up a few
        users = np.asarray(scorer.user_ids, dtype=object)
        self._users = pd.Index(np.where(pd.isna(users), "\0nobody", users.astype(str)))  # one lookup per request
        self._vectors = self.model.item_vectors()  # cached: sequence and two-tower models compute them
        if user_vectors is not None:
            _check_fits(user_vectors, len(users), self._vectors)
        self.user_vectors = user_vectors if scorer.index is not None else None
        self._lock = threading.Lock()

    @property
    def n_items(self) -> int:
        """Items the model scores."""
        return self.model.n_items

    @property
    def n_available(self) -> int:
        """Items a request may be recommended."""
        return self.model.n_items - len(self.scorer.unavailable)

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
        return self.recommend_many([Request(user_id, recent_items, k, exclude or [])])[0]

    def recommend_many(self, requests: list[Request]) -> list[Ranked]:
        """:meth:`recommend` for several requests at once: one encoder pass and one search for all
        (a live service batches the requests that arrived while it was busy). Each answer equals
        its request's alone, except that a neural encoder's float32 bits may round differently in
        a batch for requests it encodes (sessions; known users without :class:`UserVectors`)."""
        if not requests:
            return []
        k = max(r.k for r in requests)
        with self._lock:
            contexts = [self._context(r.user_id, r.recent_items, r.exclude) for r in requests]
            kinds, vectors, scores, scored = self._represent(contexts)
            exclusion = self._exclusion([c.excluded for c in contexts])
            depth = self.scorer.blend_depth(k)  # k without re-orders to interleave
            top = np.full((len(requests), depth), -1, dtype=np.int64)
            top_scores = np.full((len(requests), depth), -np.inf, dtype=np.float32)
            by_vector = [i for i, v in enumerate(vectors) if v is not None]
            ranker = self.scorer.ranker  # the export's ranking, rules included
            if by_vector:
                stacked = np.concatenate([vectors[i] for i in by_vector])
                top[by_vector], top_scores[by_vector] = ranker.search(stacked, depth, exclusion[by_vector])
            rest = [i for i, v in enumerate(vectors) if v is None]
            if rest:
                fallback = self.scorer.fallback[None, :]
                rows = torch.cat([row if (row := scores[i]) is not None else fallback for i in rest])
                top[rest], top_scores[rest] = ranker.rows(rows, exclusion[rest], depth)
            user_rows = np.array([self._user_row(r.user_id) for r in requests], dtype=np.int64)
            top, top_scores = self.scorer.blend(user_rows, top, top_scores, exclusion, k)  # the export's re-orders
            reason_rows = self._reasons(scored, top)
            cold = np.array([kind == POPULARITY for kind in kinds])
            rebought = self.scorer.rebought(user_rows, top)
            why = reason_kinds(top, reason_rows, self.model.reason_kind, cold, self.scorer.ranker.rules, rebought)
        answers = []
        for i, request in enumerate(requests):
            keep = top[i, : request.k] >= 0
            items, values = top[i, : request.k][keep], top_scores[i, : request.k][keep]
            reasons = reason_rows[i, : request.k][keep]
            answers.append(
                Ranked(
                    [str(item) for item in self.item_ids[items]],
                    list(values.astype(float).tolist()),
                    [str(self.item_ids[r]) if r >= 0 else None for r in reasons],
                    kinds[i],
                    contexts[i].ignored,
                    list(why[i, : request.k][keep]),
                )
            )
        return answers

    def rerank(self, user_id: str | None, recent_items: list[str], candidates: list[str]) -> Ranked:
        """``candidates`` in this user's order: the ones the model knows and may recommend, by the
        score :meth:`recommend` gives them (ties keep the incoming order), then the others in their
        incoming order. With neither a known user nor a session the list comes back unchanged."""
        with self._lock:
            ctx = self._context(user_id, recent_items, [])
            (kind,), (vector,), (scores,), _ = self._represent([ctx])
            wanted = self._item_index(candidates)
            known = wanted >= 0
            if kind == POPULARITY:
                values = np.full(len(candidates), -np.inf, dtype=np.float32)
            elif vector is not None and self.scorer.index is not None:
                values = self.scorer.ranker.score(vector, wanted[None, :])[0]
            else:
                if scores is None:
                    raise TypeError(f"{self.model.name} produced neither a user vector nor a score row")
                row = self.scorer.ranker.adjusted(scores.numpy())[0]  # boosts and filters as in recommend
                values = np.where(known, row[np.clip(wanted, 0, None)], -np.inf).astype(np.float32)
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

    def buy_again(self, user_id: str, k: int) -> Ranked | None:
        """The shopper's ``k`` likeliest re-orders, best first, as the export's ``buy_again`` rows
        (empty for someone without any); None when the repeat policy separates no item."""
        if self._reorders is None:
            return None
        row = self._user_row(user_id)
        lo, hi = np.searchsorted(self._reorder_users, [row, row + 1]) if row >= 0 else (0, 0)
        mine = self._reorders.iloc[lo : min(hi, lo + k)]
        n = len(mine)
        return Ranked(
            self.scorer.item_ids[mine[schema.ITEM_IDX].to_numpy(np.int64)].astype(str).tolist(),
            mine[schema.SCORE].astype(float).tolist(),
            [None] * n,
            PURCHASES,
            [],
            [schema.BUY_AGAIN] * n,
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
            [self.model.reason_kind] * int(keep.sum()),
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

    def _sequence(self, ctx: _Context) -> np.ndarray:
        """The user's stored history (model items, oldest first) followed by the session."""
        stored = self.scorer.history.of(ctx.model_user) if ctx.model_user >= 0 else np.empty(0, np.int64)
        return np.concatenate([stored, ctx.session]).astype(np.int64)

    def _represent(
        self, contexts: list[_Context]
    ) -> tuple[list[str], list[np.ndarray | None], list[torch.Tensor | None], _Scored]:
        """How each request is scored: its source, and a user vector (1, d) for models with an
        index or a score row (1, n_items) for the others; neither means the popularity fallback.
        Requests of one kind are computed together (one encoder pass). Also which requests the
        model scored from which history rows (for :meth:`_reasons`)."""
        model = self.model
        kinds = [POPULARITY] * len(contexts)
        vectors: list[np.ndarray | None] = [None] * len(contexts)
        scores: list[torch.Tensor | None] = [None] * len(contexts)
        by_sequence, by_user = [], []
        for i, ctx in enumerate(contexts):
            if model.scores_from_history and (len(ctx.session) or ctx.model_user >= 0):
                by_sequence.append(i)  # the stored history, then the session, scored as one history
                kinds[i] = SESSION if len(ctx.session) else MODEL
            elif ctx.model_user >= 0:
                by_user.append(i)  # the model's own parameters for this user (MF, popularity)
                kinds[i] = MODEL
            elif len(ctx.session) and self._vectors is not None:  # MF: fold the session in
                vectors[i] = self._vectors[ctx.session].mean(axis=0, keepdims=True)
                kinds[i] = SESSION
        if by_sequence:
            sequences = _history([self._sequence(contexts[i]) for i in by_sequence], model.n_items)
            scored = _Scored(by_sequence, np.arange(len(by_sequence)), sequences)
        else:
            users = np.array([contexts[i].model_user for i in by_user], dtype=np.int64)
            scored = _Scored(by_user, users, self.scorer.history)
        if scored.at:  # only one of the two groups is ever non-empty: a model reads histories or not
            todo = self._published(scored.at, contexts, vectors)
            if todo:
                self._fill([scored.at[j] for j in todo], scored.users[todo], scored.history, vectors, scores)
        return kinds, vectors, scores, scored

    def _published(self, at: list[int], contexts: list[_Context], vectors: list[np.ndarray | None]) -> list[int]:
        """Set the vector of each request ``at[j]`` of a known user without a session to the one the
        export published; return the positions j still to compute."""
        stored = self.user_vectors
        if stored is None:
            return list(range(len(at)))
        todo = []
        for j, i in enumerate(at):
            ctx = contexts[i]
            found = int(stored.row_of[ctx.row]) if ctx.row >= 0 and not len(ctx.session) else -1
            if found >= 0:
                vectors[i] = stored.vectors[found : found + 1]
            else:
                todo.append(j)
        return todo

    def _fill(
        self,
        at: list[int],
        users: np.ndarray,
        history: UserHistory,
        vectors: list[np.ndarray | None],
        scores: list[torch.Tensor | None],
    ) -> None:
        """Score ``users`` of ``history`` in one call; row j goes to request ``at[j]``."""
        if self.scorer.index is not None:
            found = self.model.user_vectors(users, history)
            if found is None:
                raise TypeError(f"{self.model.name} has item vectors but no user vectors")
            for j, i in enumerate(at):
                vectors[i] = found[j : j + 1]
            return
        with torch.no_grad():
            rows = self.model.score_users(torch.from_numpy(users), history).float()
        for j, i in enumerate(at):
            scores[i] = rows[j : j + 1]

    def _exclusion(self, excluded: list[np.ndarray]) -> sp.csr_matrix:
        """One row per request over the model's items, set where it must not be recommended."""
        indptr = np.zeros(len(excluded) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(e) for e in excluded])
        columns = np.concatenate(excluded) if excluded else np.empty(0, np.int64)
        data = np.ones(len(columns), dtype=np.float32)
        return sp.csr_matrix((data, columns, indptr), shape=(len(excluded), self.model.n_items))

    def _reasons(self, scored: _Scored, top: np.ndarray) -> np.ndarray:
        """(n, k) for each request's ``top`` items (model items), the history item each is there
        because of where the model can say (item-kNN, the vector models); -1 elsewhere
        (fallbacks, folded-in sessions, popularity)."""
        out = np.full(top.shape, -1, dtype=np.int64)
        if not scored.at:
            return out
        found = self.model.explain(scored.users, top[scored.at], scored.history)
        if found is not None:
            out[scored.at] = found
        return out


def _check_fits(vectors: UserVectors, n_users: int, items: np.ndarray | None) -> None:
    """ValueError unless ``vectors`` are for ``n_users`` users and as long as the ``items``' vectors."""
    if len(vectors.row_of) != n_users:
        raise ValueError(f"{vectors.source} is aligned to {len(vectors.row_of)} users, the scorer has {n_users}")
    if items is not None and len(vectors.vectors) and vectors.vectors.shape[1] != items.shape[1]:
        raise ValueError(f"{vectors.source} has {vectors.vectors.shape[1]}-value vectors, the items {items.shape[1]}")


def _history(sequences: list[np.ndarray], n_items: int) -> UserHistory:
    """A history whose row j is ``sequences[j]`` (oldest first)."""
    indptr = np.zeros(len(sequences) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(q) for q in sequences])
    items = np.concatenate(sequences).astype(np.int64) if sequences else np.empty(0, np.int64)
    return UserHistory(indptr, items, n_items)
