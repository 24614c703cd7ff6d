"""Evaluate a served model bundle on a FeatureSet's split, in that FeatureSet's id space.

This is how the new model, the popularity baseline and the current champion (possibly trained on
an older snapshot with other encoders) are compared on exactly the same users and items.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recsys_lib import schema
from recsys_lib.errors import DataValidationError
from recsys_lib.evaluation.evaluate import evaluation_users, relevant_items
from recsys_lib.evaluation.metrics import ranking_metrics
from recsys_lib.features import FeatureSet
from recsys_lib.models.bundle import ModelBundle


def evaluate_bundle(
    bundle: ModelBundle, features: FeatureSet, split: str = schema.TEST, ks: Sequence[int] = (10, 20, 50)
) -> dict[str, float]:
    """Full-ranking metrics at ``ks`` on ``split``; each user's train items and unavailable items are
    excluded from the ranking. Raises DataValidationError when no user can be evaluated."""
    users = evaluation_users(features, split)
    relevant = relevant_items(features, split, users)
    keep = np.array([len(r) > 0 for r in relevant], dtype=bool)
    users = users[keep]
    relevant = [r for r, k in zip(relevant, keep, strict=True) if k]
    if len(users) == 0:
        raise DataValidationError(
            f"no user can be evaluated on the {split} split: none has both training history and new items "
            "there; provide more data or raise features.test_fraction"
        )
    items, _ = bundle.recommend_for(features, users, max(ks), exclude_splits=(schema.TRAIN,))
    metrics = ranking_metrics(items, relevant, ks, features.n_items)
    metrics["n_users_evaluated"] = float(len(users))
    return metrics
