"""Ranked lists under the business rules, for users given as vectors or as score rows.

One :class:`Ranker` per scorer serves the batch export (:class:`~recsys_lib.serving.scorer.BundleScorer`)
and the live service (:class:`~recsys_lib.serving.live.LiveScorer`), so a rule gives the same list
in both. Filtered items never reach it (the scorer folds them into the items it never lists); here:

* boosted items (new arrivals) live in an index of their own: a list is the exact merge of the
  best plain and the best boosted items (:func:`~recsys_lib.serving.rules.merge_boosted`);
* category caps fetch more candidates than ``k`` (4k, doubled for the rows that came up short,
  up to the whole catalogue), so every list is full when enough items qualify;
* diversity re-orders those candidates by maximal marginal relevance (:func:`~recsys_lib.serving.rules.mmr`);
* pinned items go first (:func:`~recsys_lib.serving.rules.pin`), with their own scores.

Without rules it is exactly the plain search (one index, ``k`` candidates).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch

from recsys_lib.errors import ConfigError
from recsys_lib.search import InnerProductIndex, topk_excluding
from recsys_lib.serving.rules import (
    ListRules,
    boost_scores,
    cap_per_category,
    category_similarity,
    merge_boosted,
    mmr,
    pin,
    vector_similarity,
)

Candidates = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]  # (rows, fetch) -> ranked items, scores
_FIRST_FETCH = 4  # candidates per list slot fetched first when categories are capped


class Ranker:
    """Top-k under ``rules`` (over ``n_items``, filters already folded into ``never``: bool, items
    never listed). ``vectors`` (n_items, d) and ``bias`` make the indexes of a model with item
    vectors; without them only score rows can be ranked."""

    def __init__(
        self,
        rules: ListRules,
        never: np.ndarray,
        vectors: np.ndarray | None = None,
        bias: np.ndarray | None = None,
        device: torch.device | str | None = None,
    ):
        self.rules, self.never = rules, np.asarray(never, dtype=bool)
        self.n_items = len(self.never)
        boosted = rules.boosted & ~self.never if rules.boosts else np.zeros(self.n_items, dtype=bool)
        self.boosted = boosted
        self.n_listable = int((~self.never).sum())
        self.index: InnerProductIndex | None = None
        self.boosted_index: InnerProductIndex | None = None
        self._similarity = _diversity_similarity(rules, vectors)
        self._last_row: tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
        if vectors is not None:
            self.index = InnerProductIndex(vectors, bias, allowed=~self.never & ~boosted, device=device)
            if boosted.any():
                self.boosted_index = InnerProductIndex(vectors, bias, allowed=boosted, device=device)

    # --- models with item vectors ------------------------------------------------------------------
    def search(self, user_vectors: np.ndarray, k: int, exclude: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """Each user's top ``k`` (items -1 / scores -inf padded) under the rules, skipping
        ``exclude`` (n, n_items) non-zeros."""
        if self.index is None:
            raise ValueError("this model has no item vectors: rank score rows with Ranker.rows")
        index, boosted_index = self.index, self.boosted_index

        def candidates(rows: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
            found = index.search(user_vectors[rows], fetch, exclude[rows])
            if boosted_index is None:
                return found
            extra = boosted_index.search(user_vectors[rows], fetch, exclude[rows])
            return merge_boosted(found, extra, self.rules.boost, fetch)

        def pinned_scores(rows: np.ndarray) -> np.ndarray:
            return self.score(user_vectors[rows], np.tile(self.rules.pinned, (len(rows), 1)))

        return self._ranked(candidates, pinned_scores, len(user_vectors), k, exclude)

    def score(self, user_vectors: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The scores :meth:`search` ranks ``items`` (n, c) by, boosts included; -inf for items never
        listed and for -1."""
        if self.index is None:
            raise ValueError("this model has no item vectors")
        out = self.index.score(user_vectors, items)
        if self.boosted_index is not None:
            extra = boost_scores(self.boosted_index.score(user_vectors, items), self.rules.boost)
            out = np.maximum(out, extra)  # each item is in exactly one index; the other gives -inf
        return out

    # --- models scoring whole rows, and the popularity fallback -------------------------------------
    def rows(self, scores: torch.Tensor, exclude: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Each row's top ``k`` of ``scores`` (n, n_items) under the rules, skipping ``exclude``.

        One row broadcast to every user (stride 0: popularity, the cold-start fallback) is ranked
        once, and each list read off that order past the user's excluded items: the same lists,
        without scoring or sorting ``n x n_items`` numbers."""
        if scores.dim() == 2 and scores.shape[0] > 0 and scores.stride(0) == 0 and not scores[0].isnan().any():
            return self._shared_row(scores[0].detach().cpu().float().numpy(), exclude, k)  # (NaN sorts apart)
        values = self.adjusted(scores.detach().cpu().float().numpy())
        table = torch.from_numpy(values)

        def candidates(rows: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
            items, found = topk_excluding(table[torch.from_numpy(rows)], exclude[rows], fetch)
            return items.numpy(), found.numpy()

        def pinned_scores(rows: np.ndarray) -> np.ndarray:
            pinned: np.ndarray = values[np.ix_(rows, self.rules.pinned)]
            return pinned

        return self._ranked(candidates, pinned_scores, len(values), k, exclude)

    def _shared_row(self, row: np.ndarray, exclude: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`rows` for ``exclude.shape[0]`` users who all have the scores ``row`` (n_items,)."""
        values, order, ordered = self._row_order(row)

        def candidates(rows: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
            sub = exclude[rows]
            most_excluded = int(np.diff(sub.indptr).max(initial=0))
            prefix = np.arange(min(len(order), fetch + most_excluded))  # enough for every row's fetch
            keep = ~(sub[:, order[prefix]] != 0).toarray()  # (rows, prefix); explicit zeros do not exclude
            place = np.cumsum(keep, axis=1) - 1  # each kept item's place in its row's list
            row, col = np.nonzero(keep & (place < fetch))
            items = np.full((len(rows), fetch), -1, dtype=np.int64)
            found = np.full((len(rows), fetch), -np.inf, dtype=np.float32)
            items[row, place[row, col]], found[row, place[row, col]] = order[col], ordered[col]
            return items, found

        def pinned_scores(rows: np.ndarray) -> np.ndarray:
            return np.tile(values[self.rules.pinned], (len(rows), 1))

        return self._ranked(candidates, pinned_scores, exclude.shape[0], k, exclude)

    def _row_order(self, row: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``row`` as the rules rank it, its listable items best first (ties to the lower item) and
        their scores; kept for the next chunk, which usually brings the same row."""
        cached = self._last_row
        if cached is not None and np.array_equal(cached[0], row):
            return cached[1]
        values = self.adjusted(row[None, :])[0]
        listable = np.flatnonzero(~np.isneginf(values))
        order = listable[np.argsort(-values[listable], kind="stable")]
        self._last_row = (row.copy(), (values, order, values[order]))
        return self._last_row[1]

    def adjusted(self, scores: np.ndarray) -> np.ndarray:
        """A copy of score rows (n, n_items) as the rules rank them: -inf for items never listed,
        boosted items' scores boosted."""
        values = np.array(scores, dtype=np.float32, copy=True)
        values[:, self.never] = -np.inf
        if self.boosted.any():
            values[:, self.boosted] = boost_scores(values[:, self.boosted], self.rules.boost)
        return values

    # --- the rules shared by both ------------------------------------------------------------------
    def _ranked(
        self,
        candidates: Candidates,
        pinned_scores: Callable[[np.ndarray], np.ndarray],
        n: int,
        k: int,
        exclude: sp.csr_matrix,
    ) -> tuple[np.ndarray, np.ndarray]:
        rows = np.arange(n)
        if not (self.rules.caps or self.rules.diversifies):
            items, scores = candidates(rows, k)
        else:
            items, scores = self._reranked(candidates, rows, k)
        if len(self.rules.pinned) and n:
            pinned = self.rules.pinned
            allowed = ~self.never[pinned][None, :] & (exclude[:, pinned].toarray() == 0)
            items, scores = pin(items, scores, pinned, pinned_scores(rows), allowed)
        return items, scores

    def _reranked(self, candidates: Candidates, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Diversity (MMR over the best 4k candidates) and/or at most ``max_per_category`` items
        of a category per list (a walk down the candidates, fetching more for the lists still short
        while the catalogue has more)."""
        rules = self.rules
        items = np.full((len(rows), k), -1, dtype=np.int64)
        scores = np.full((len(rows), k), -np.inf, dtype=np.float32)
        fetch, todo = min(self.n_listable, _FIRST_FETCH * k), rows
        while len(todo):
            found, found_scores = candidates(todo, max(fetch, 1))
            if rules.diversifies and self._similarity is not None and rules.diversity is not None:
                take = found.shape[1] if rules.caps else k  # a capped walk needs the whole order
                found, found_scores = mmr(found, found_scores, self._similarity, rules.diversity, take)
            if rules.caps and rules.category is not None and rules.max_per_category is not None:
                picked, picked_scores, full = cap_per_category(
                    found, found_scores, rules.category, rules.max_per_category, k
                )
            else:
                picked, picked_scores, full = found[:, :k], found_scores[:, :k], np.ones(len(todo), dtype=bool)
            items[todo], scores[todo] = picked, picked_scores
            if fetch >= self.n_listable:
                break  # every listable item was a candidate: what is short stays short
            todo, fetch = todo[~full], min(self.n_listable, 2 * fetch)
        return items, scores


def _diversity_similarity(
    rules: ListRules, vectors: np.ndarray | None
) -> Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
    """The similarity MMR uses (None without diversity): item vectors' cosine, or same category."""
    if not rules.diversifies:
        return None
    if rules.similar_by == "vectors" or (rules.similar_by == "auto" and vectors is not None):
        if vectors is None:
            raise ConfigError("recommend.diversity_by is 'vectors' but the model has no item vectors; use 'categories'")
        return vector_similarity(vectors)
    if rules.category is None:
        raise ConfigError("recommend.diversity by categories needs the catalogue's categories")
    return category_similarity(rules.category)
