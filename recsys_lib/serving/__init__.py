"""Serving a trained model: the bundle the registry stores, the scorer the batch export and the
live service share, and the evaluation of a bundle on a FeatureSet."""

from recsys_lib.serving.bundle import ModelBundle, long_format
from recsys_lib.serving.scorer import ALL_SPLITS, BundleScorer, positions

__all__ = ["ALL_SPLITS", "BundleScorer", "ModelBundle", "long_format", "positions"]
