"""Sampled-negative evaluation: the target against 100 uniform negatives (DESIGN.md section 7c).

The SASRec paper's protocol: with a leave-one-out split, each user's held-out item (the target) is
ranked among ``n_negatives`` items drawn uniformly, without replacement, from the items the user
has neither in their history nor in their relevant set. Users, targets and history are those of
full ranking (:func:`~recsys_lib.evaluation.evaluate.evaluable`,
:func:`~recsys_lib.evaluation.evaluate.evaluation_history`), so the two protocols see the same cases.

Choices, stated once:

* a user with several relevant items (a temporal split) yields one case per item, each ranked
  against its own negatives; metrics are means over cases, which with leave-one-out are the users;
* ties are pessimistic: a negative scoring exactly as the target ranks above it, so a model that
  scores everything alike gets 0, not the 10/101 a random tie-break would give it; NaN scores count
  as -inf;
* metrics come from :func:`~recsys_lib.evaluation.metrics.ranking_metrics` over a synthetic ranked
  list per case (the target at its rank, placeholders elsewhere); catalogue coverage means nothing
  over 101 candidates and is dropped.

Sampled metrics are far higher than full-ranking ones and need not order models the same way
(Krichene and Rendle, "On Sampled Metrics for Item Recommendation", KDD 2020): compare them only
with numbers measured the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from recsys_lib import schema
from recsys_lib.evaluation.evaluate import evaluable, evaluation_history
from recsys_lib.evaluation.metrics import ranking_metrics

if TYPE_CHECKING:
    from recsys_lib.features import FeatureSet, UserHistory
    from recsys_lib.models.base import Recommender


def sample_negatives(excluded: np.ndarray, n_items: int, n_negatives: int, rng: np.random.Generator) -> np.ndarray:
    """``(min(n_negatives, n_eligible),)`` distinct int64 items drawn uniformly without replacement
    from ``[0, n_items)`` minus ``excluded`` (any order, duplicates allowed), in draw order.

    Draws positions among the eligible items and maps them to item indices through the sorted
    exclusions, so the cost grows with ``n_negatives`` and ``len(excluded)``, not with the catalogue.
    """
    excluded = np.unique(np.asarray(excluded, dtype=np.int64))  # sorted
    n_eligible = n_items - len(excluded)
    positions = rng.choice(n_eligible, size=min(n_negatives, n_eligible), replace=False).astype(np.int64)
    eligible_below = excluded - np.arange(len(excluded))  # (n_excluded,) eligible items under each exclusion
    return positions + np.searchsorted(eligible_below, positions, side="right")


def candidate_lists(
    users: np.ndarray, relevant: Sequence[np.ndarray], history: UserHistory, n_negatives: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One case per (user, relevant item), in order: ``rows`` ``(n_cases,)``, the position of the
    case's user in ``users``, and ``candidates`` ``(n_cases, 1 + n_negatives)`` int64 holding the
    target in column 0, then its negatives (:func:`sample_negatives` avoiding the user's history and
    relevant items), padded with -1 where fewer items are eligible.
    """
    rows: list[int] = []
    lists: list[np.ndarray] = []
    for row, (user, items) in enumerate(zip(users, relevant, strict=True)):
        excluded = np.concatenate([history.of(int(user)), items])
        for target in items:
            lists.append(np.r_[target, sample_negatives(excluded, history.n_items, n_negatives, rng)])
            rows.append(row)
    candidates = np.full((len(lists), 1 + n_negatives), -1, dtype=np.int64)
    for case, candidate_list in enumerate(lists):
        candidates[case, : len(candidate_list)] = candidate_list
    return np.asarray(rows, dtype=np.int64), candidates


def target_ranks(scores: torch.Tensor, rows: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """``(n_cases,)`` int64 0-based rank of each target among its candidates: the number of its
    negatives scoring at least as high (pessimistic ties; NaN counts as -inf).

    ``scores`` is ``(n_users, n_items)``; case i reads row ``rows[i]``; -1 candidates are ignored.
    """
    cand = torch.from_numpy(candidates).to(scores.device)  # (n_cases, 1 + n_negatives)
    row = torch.from_numpy(rows).to(scores.device)[:, None]  # (n_cases, 1)
    s = scores[row, cand.clamp(min=0)].float()  # (n_cases, 1 + n_negatives)
    s = torch.where(torch.isnan(s), -torch.inf, s)
    ahead = (s[:, 1:] >= s[:, :1]) & (cand[:, 1:] >= 0)  # (n_cases, n_negatives)
    return ahead.sum(dim=1).cpu().numpy().astype(np.int64)


def ranked_lists(ranks: np.ndarray, k_max: int) -> np.ndarray:
    """``(n_cases, k_max)`` lists in a private index space for :func:`ranking_metrics`: item 0 is the
    target, placed at its rank when that is below ``k_max``; items 1..k_max are distinct non-relevant
    placeholders. Pass ``relevant = [[0]] * n_cases`` and ``n_items = k_max + 1`` with them.
    """
    lists = np.tile(np.arange(1, k_max + 1, dtype=np.int64), (len(ranks), 1))
    shown = np.flatnonzero(ranks < k_max)
    lists[shown, ranks[shown]] = 0
    return lists


def evaluate_sampled(
    model: Recommender,
    features: FeatureSet,
    split: str = schema.TEST,
    ks: Sequence[int] = (5, 10, 20),
    n_negatives: int = 100,
    seed: int = 0,
    chunk_size: int = 4096,
) -> dict[str, float]:
    """Recall, NDCG, HR and MRR at each k of ``ks`` for the targets of ``split`` ranked against
    ``n_negatives`` uniform negatives each (see the module docstring), plus ``n_users_evaluated``.

    Deterministic given ``seed`` whatever ``chunk_size``; users are scored ``chunk_size`` at a time,
    so memory is bounded by ``chunk_size * n_items`` scores. Raises ValueError for a negative
    ``n_negatives``, a ``chunk_size`` below 1 or a k below 1, and DataValidationError when no user
    can be evaluated.
    """
    if n_negatives < 0 or chunk_size < 1:
        raise ValueError(f"need n_negatives >= 0 and chunk_size >= 1, got {n_negatives} and {chunk_size}")
    users, relevant = evaluable(features, split)
    history = evaluation_history(features, split)
    rng = np.random.default_rng(seed)
    ranks = []
    for start in range(0, len(users), chunk_size):
        chunk = users[start : start + chunk_size]
        rows, candidates = candidate_lists(chunk, relevant[start : start + chunk_size], history, n_negatives, rng)
        with torch.no_grad():
            scores = model.score_users(torch.from_numpy(chunk), history)  # (chunk, n_items)
        ranks.append(target_ranks(scores, rows, candidates))
    lists = ranked_lists(np.concatenate(ranks), max(ks))
    metrics = ranking_metrics(lists, [np.zeros(1, dtype=np.int64)] * len(lists), ks, max(ks) + 1)
    kept = {name: value for name, value in metrics.items() if not name.startswith("coverage_")}
    return {**kept, "n_users_evaluated": float(len(users))}
