"""Feature building: encoders, weighted interactions, splits and user histories (frames in, frames out)."""

from recsys_lib.features.build import build_features
from recsys_lib.features.featureset import FeatureSet
from recsys_lib.features.history import UserHistory

__all__ = ["FeatureSet", "UserHistory", "build_features"]
