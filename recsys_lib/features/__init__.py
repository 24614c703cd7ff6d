"""Feature building: encoders, weighted interactions, temporal splits and sequences (frames in, frames out)."""

from recsys_lib.features.build import build_features
from recsys_lib.features.featureset import FeatureSet

__all__ = ["FeatureSet", "build_features"]
