"""Evaluate a served model bundle on a FeatureSet's split, in that FeatureSet's id space.

This is how the new model, the popularity baseline and the current champion (possibly trained on
an older snapshot with other encoders) are compared on exactly the same users and items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recsys_lib import schema
from recsys_lib.evaluation.evaluate import evaluable, history_splits
from recsys_lib.evaluation.metrics import ranking_metrics
from recsys_lib.features import FeatureSet
from recsys_lib.serving.bundle import ModelBundle


@dataclass(frozen=True)
class BundleEvaluation:
    """Metrics of one bundle on one split, and the lists they were computed from."""

    metrics: dict[str, float]
    users: np.ndarray  # (n,) evaluated user indices
    recommended: np.ndarray  # (n, max(ks)) item indices, -1 padded


def evaluate_bundle_lists(
    bundle: ModelBundle, features: FeatureSet, split: str = schema.TEST, ks: Sequence[int] = (10, 20, 50)
) -> BundleEvaluation:
    """Full-ranking metrics at ``ks`` on ``split``, scored from and excluding each user's history
    (the protocol of :func:`~recsys_lib.evaluation.evaluate.evaluate_recommender`: for a model
    bundled from ``features``, the same numbers), with the ranked lists kept for further analysis."""
    users, relevant = evaluable(features, split)
    recommended = bundle.recommend_for(
        features, users, max(ks), history_splits=history_splits(split), exclude_unavailable=False
    )[0]
    metrics = {**ranking_metrics(recommended, relevant, ks, features.n_items), "n_users_evaluated": float(len(users))}
    return BundleEvaluation(metrics, users, recommended)


def evaluate_bundle(
    bundle: ModelBundle, features: FeatureSet, split: str = schema.TEST, ks: Sequence[int] = (10, 20, 50)
) -> dict[str, float]:
    """The metrics of :func:`evaluate_bundle_lists`."""
    return evaluate_bundle_lists(bundle, features, split, ks).metrics
