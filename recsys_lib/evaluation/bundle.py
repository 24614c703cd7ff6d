"""Evaluate a served model bundle on a FeatureSet's split, in that FeatureSet's id space.

This is how the new model, the popularity baseline and the current champion (possibly trained on
an older snapshot with other encoders) are compared on exactly the same users and items.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recsys_lib import schema
from recsys_lib.evaluation.evaluate import evaluate_rankings, history_splits
from recsys_lib.features import FeatureSet
from recsys_lib.models.bundle import ModelBundle


def evaluate_bundle(
    bundle: ModelBundle, features: FeatureSet, split: str = schema.TEST, ks: Sequence[int] = (10, 20, 50)
) -> dict[str, float]:
    """Full-ranking metrics at ``ks`` on ``split``, scored from and excluding each user's history:
    the same protocol, and for a model bundled from ``features`` the same numbers, as
    :func:`~recsys_lib.evaluation.evaluate.evaluate_recommender`."""
    splits = history_splits(split)

    def rank(users: np.ndarray, k: int) -> np.ndarray:
        return bundle.recommend_for(features, users, k, history_splits=splits, exclude_unavailable=False)[0]

    return evaluate_rankings(rank, features, split, ks)
