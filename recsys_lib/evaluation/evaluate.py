"""Full-ranking evaluation on a temporal split, history excluded (DESIGN.md section 7a).

A user is evaluated when they have pairs in the split and in train. Their relevant items are the
split's items they did not already interact with in train; the model ranks the whole catalogue
minus their train history, and the lists are scored by :func:`ranking_metrics`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from recsys_lib import schema
from recsys_lib.errors import DataValidationError
from recsys_lib.evaluation.metrics import ranking_metrics

if TYPE_CHECKING:
    from recsys_lib.features import FeatureSet
    from recsys_lib.models.base import Recommender

_SPLITS = (schema.TRAIN, schema.VALIDATION, schema.TEST)


def _split_pairs(features: FeatureSet, split: str) -> tuple[np.ndarray, np.ndarray]:
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    df = getattr(features, split)
    return df[schema.USER_IDX].to_numpy(np.int64), df[schema.ITEM_IDX].to_numpy(np.int64)


def evaluation_users(features: FeatureSet, split: str = schema.TEST) -> np.ndarray:
    """Sorted user_idx with at least one pair in ``split`` and at least one train pair."""
    users, _ = _split_pairs(features, split)
    train_users, _ = _split_pairs(features, schema.TRAIN)
    return np.intersect1d(users, train_users).astype(np.int64)


def relevant_items(features: FeatureSet, split: str, users: np.ndarray) -> list[np.ndarray]:
    """For each of ``users``: sorted items of their ``split`` pairs that are not in their train history.

    The list is aligned with ``users``; a user whose split items were all seen in train gets an
    empty array.
    """
    users = np.asarray(users, dtype=np.int64)
    split_users, split_items = _split_pairs(features, split)
    train_users, train_items = _split_pairs(features, schema.TRAIN)
    n = features.n_items
    keys = np.unique(split_users * n + split_items)
    keys = keys[np.isin(keys // n, users) & ~np.isin(keys, train_users * n + train_items)]  # sorted
    bounds = np.searchsorted(keys // n, np.stack([users, users + 1]))  # (2, n_users) per-user ranges
    items = keys % n
    return [items[start:end] for start, end in zip(bounds[0], bounds[1], strict=True)]


#: Produces rankings for the evaluated users: (user_idx (n,), k) -> item_idx (n, k), -1 padded.
RankFn = Callable[[np.ndarray, int], np.ndarray]


def evaluate_rankings(
    rank: RankFn, features: FeatureSet, split: str = schema.TEST, ks: Sequence[int] = (10, 20, 50)
) -> dict[str, float]:
    """Metrics (see :mod:`recsys_lib.evaluation.metrics`) of the lists ``rank`` returns for every
    evaluable user of ``split``, plus ``n_users_evaluated``. ``rank`` must exclude each user's train
    history. Users whose relevant set is empty after removing history are skipped.

    Raises DataValidationError when no user can be evaluated (no new items for any train user).
    """
    users = evaluation_users(features, split)
    relevant = relevant_items(features, split, users)
    keep = np.fromiter((len(r) > 0 for r in relevant), dtype=bool, count=len(relevant))
    users, relevant = users[keep], [r for r, k in zip(relevant, keep, strict=True) if k]
    if len(users) == 0:
        raise DataValidationError(
            f"no user has both train history and new items in the {split!r} split; nothing to evaluate "
            "(provide more data or raise features.test_fraction)"
        )
    metrics = ranking_metrics(rank(users, max(ks)), relevant, ks, features.n_items)
    return {**metrics, "n_users_evaluated": float(len(users))}


def evaluate_recommender(
    model: Recommender, features: FeatureSet, split: str = schema.TEST, ks: Sequence[int] = (10, 20, 50)
) -> dict[str, float]:
    """:func:`evaluate_rankings` of a model in ``features``' index space (per-epoch validation)."""
    train = features.matrix(schema.TRAIN)
    return evaluate_rankings(lambda users, k: model.recommend(users, k, exclude=train)[0], features, split, ks)
