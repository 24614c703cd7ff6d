"""Full-ranking evaluation, history excluded: the one core every protocol and caller shares.

The windows before the evaluated split are the user's history (:data:`HISTORY_SPLITS`): train for
validation, train + validation for test. That is what a model scores from and what is excluded
from its ranking. A user is evaluated when they have history and, in the split, at least one item
outside it. With a temporal split this is the production protocol (DESIGN.md section 7a); with a
leave-one-out split (``features.split = "leave_one_out"``) it is the full-ranking protocol of the
S3-Rec and eSASRec tables (7b). :mod:`recsys_lib.evaluation.sampled` holds 7c.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from recsys_lib import schema
from recsys_lib.errors import DataValidationError
from recsys_lib.evaluation.metrics import ranking_metrics

if TYPE_CHECKING:
    import scipy.sparse as sp

    from recsys_lib.features import FeatureSet, UserHistory
    from recsys_lib.models.base import Recommender

#: The windows that make up a user's history when the given split is evaluated.
HISTORY_SPLITS: dict[str, tuple[str, ...]] = {
    schema.VALIDATION: (schema.TRAIN,),
    schema.TEST: (schema.TRAIN, schema.VALIDATION),
}


def history_splits(split: str) -> tuple[str, ...]:
    """:data:`HISTORY_SPLITS` of ``split``; ValueError for anything but validation or test."""
    try:
        return HISTORY_SPLITS[split]
    except KeyError:
        raise ValueError(f"split must be one of {sorted(HISTORY_SPLITS)}, got {split!r}") from None


def evaluation_history(features: FeatureSet, split: str) -> UserHistory:
    """Every user's history when ``split`` is evaluated."""
    return features.history(*history_splits(split))


def _split_pairs(features: FeatureSet, split: str) -> tuple[np.ndarray, np.ndarray]:
    history_splits(split)  # rejects unknown splits
    df = getattr(features, split)
    return df[schema.USER_IDX].to_numpy(np.int64), df[schema.ITEM_IDX].to_numpy(np.int64)


def evaluation_users(features: FeatureSet, split: str = schema.TEST) -> np.ndarray:
    """Sorted user_idx with at least one pair in ``split`` and a non-empty history before it."""
    users, _ = _split_pairs(features, split)
    known = np.flatnonzero(evaluation_history(features, split).lengths() > 0)
    return np.intersect1d(users, known).astype(np.int64)


def relevant_items(features: FeatureSet, split: str, users: np.ndarray, *, reorders: bool = False) -> list[np.ndarray]:
    """For each of ``users``: sorted items of their ``split`` pairs that are not in their history;
    with ``reorders``, all of them, history items included (the protocol where a re-order counts as
    a hit: for lists that may repeat, ``recommend.repeat_purchases: allow`` or a ``buy_again`` list).

    The list is aligned with ``users``; a user whose split items are all in their history gets an
    empty array (with ``reorders``, only a user without pairs in the split does).
    """
    users = np.asarray(users, dtype=np.int64)
    split_users, split_items = _split_pairs(features, split)
    n = features.n_items
    keys = np.unique(split_users * n + split_items)
    keys = keys[np.isin(keys // n, users)]  # sorted
    if not reorders:
        seen = evaluation_history(features, split).matrix().tocoo()
        keys = keys[~np.isin(keys, seen.row.astype(np.int64) * n + seen.col)]
    bounds = np.searchsorted(keys // n, np.stack([users, users + 1]))  # (2, n_users) per-user ranges
    items = keys % n
    return [items[start:end] for start, end in zip(bounds[0], bounds[1], strict=True)]


#: Produces rankings for the evaluated users: (user_idx (n,), k) -> item_idx (n, k), -1 padded.
RankFn = Callable[[np.ndarray, int], np.ndarray]


def evaluable(features: FeatureSet, split: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """The users of ``split`` with history and at least one new item, and those items.

    Raises DataValidationError when there is none."""
    users = evaluation_users(features, split)
    relevant = relevant_items(features, split, users)
    keep = np.fromiter((len(r) > 0 for r in relevant), dtype=bool, count=len(relevant))
    users, relevant = users[keep], [r for r, k in zip(relevant, keep, strict=True) if k]
    if len(users) == 0:
        raise DataValidationError(
            f"no user has both history and new items in the {split!r} split; nothing to evaluate "
            "(provide more data or raise features.test_fraction)"
        )
    return users, relevant


def sample_users(
    users: np.ndarray, relevant: list[np.ndarray], max_users: int | None, seed: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    """At most ``max_users`` of ``users`` (a seeded uniform sample, order kept) with their relevant
    items; everything when ``max_users`` is None or not smaller."""
    if max_users is None or len(users) <= max_users:
        return users, relevant
    keep = np.sort(np.random.default_rng(seed).choice(len(users), size=max_users, replace=False))
    return users[keep], [relevant[i] for i in keep]


@dataclass(frozen=True)
class SplitEvaluator:
    """One split's evaluation inputs, computed once: the users' histories and exclusions, the
    evaluated users (all, or a seeded sample) and their relevant items. Evaluating a model on it
    then costs the ranking alone, which is what per-epoch validation needs."""

    history: UserHistory
    seen: sp.csr_matrix
    """(n_users, n_items) the history as exclusions."""
    users: np.ndarray
    relevant: list[np.ndarray]
    n_items: int

    @classmethod
    def prepare(
        cls, features: FeatureSet, split: str = schema.TEST, *, max_users: int | None = None, seed: int = 0
    ) -> SplitEvaluator:
        """The evaluable users of ``split`` (at most ``max_users``, a seeded sample) with their
        histories. Raises DataValidationError when no user can be evaluated."""
        history = evaluation_history(features, split)
        users, relevant = sample_users(*evaluable(features, split), max_users, seed)
        return cls(history, history.matrix(), users, relevant, features.n_items)

    def metrics(self, recommended: np.ndarray, ks: Sequence[int] = (10, 20, 50)) -> dict[str, float]:
        """Metrics of ``recommended`` ((len(users), >= max(ks)) item indices, row i for ``users[i]``,
        -1 padded), plus ``n_users_evaluated``."""
        metrics = ranking_metrics(recommended, self.relevant, ks, self.n_items)
        return {**metrics, "n_users_evaluated": float(len(self.users))}

    def rankings(self, rank: RankFn, ks: Sequence[int] = (10, 20, 50)) -> dict[str, float]:
        """Metrics of the lists ``rank`` returns, plus ``n_users_evaluated``."""
        return self.metrics(rank(self.users, max(ks)), ks)

    def evaluate(self, model: Recommender, ks: Sequence[int] = (10, 20, 50)) -> dict[str, float]:
        """Metrics of ``model``'s recommendations, scored from and excluding each user's history."""
        return self.rankings(lambda users, k: model.recommend(users, k, self.history, exclude=self.seen)[0], ks)


def evaluate_rankings(
    rank: RankFn,
    features: FeatureSet,
    split: str = schema.TEST,
    ks: Sequence[int] = (10, 20, 50),
    *,
    max_users: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Metrics (see :mod:`recsys_lib.evaluation.metrics`) of the lists ``rank`` returns for every
    evaluable user of ``split`` (or a seeded sample of ``max_users`` of them), plus
    ``n_users_evaluated``. ``rank`` must score from and exclude each user's history
    (:func:`evaluation_history`).

    Raises DataValidationError when no user can be evaluated.
    """
    return SplitEvaluator.prepare(features, split, max_users=max_users, seed=seed).rankings(rank, ks)


def evaluate_recommender(
    model: Recommender,
    features: FeatureSet,
    split: str = schema.TEST,
    ks: Sequence[int] = (10, 20, 50),
    *,
    max_users: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """:func:`evaluate_rankings` of a model in ``features``' index space."""
    return SplitEvaluator.prepare(features, split, max_users=max_users, seed=seed).evaluate(model, ks)
