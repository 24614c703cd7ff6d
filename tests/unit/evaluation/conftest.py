"""A hand-made FeatureSet and a recommender with fixed scores, for protocol tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from recsys_lib import schema
from recsys_lib.config import ModelConfig
from recsys_lib.features import FeatureSet
from recsys_lib.features.interactions import PAIRS_DTYPES
from recsys_lib.models.base import Recommender


def pairs(rows: list[tuple[int, int]]) -> pd.DataFrame:
    """A split table of (user_idx, item_idx) pairs with weight 1."""
    users, items = (list(c) for c in zip(*rows, strict=True)) if rows else ([], [])
    ts = pd.Timestamp("2024-01-01", tz="UTC")
    return pd.DataFrame(
        {schema.USER_IDX: users, schema.ITEM_IDX: items, schema.WEIGHT: 1.0, schema.TIMESTAMP: ts}
    ).astype(PAIRS_DTYPES)


@pytest.fixture
def features() -> FeatureSet:
    """4 users, 6 items.

    train: u0 {0, 1}, u1 {2}, u2 {3}; u3 has no history.
    test:  u0 {1 (seen), 4, 5}, u1 {2 (seen)}, u3 {0}; u2 nothing.
    """
    n_items = 6
    return FeatureSet(
        user_ids=np.array(["a", "b", "c", "d"], dtype=object),
        item_ids=np.array([f"i{i}" for i in range(n_items)], dtype=object),
        items=pd.DataFrame({schema.ITEM_IDX: range(n_items), schema.AVAILABLE: True}),
        train=pairs([(0, 0), (0, 1), (1, 2), (2, 3)]),
        validation=pairs([]),
        test=pairs([(0, 1), (0, 4), (0, 5), (1, 2), (3, 0)]),
    )


@pytest.fixture
def fixed_scores() -> type[Recommender]:
    """Factory: ``fixed_scores([s0, s1, ...])`` is a model scoring item i as s_i for every user."""
    return FixedScores


class FixedScores(Recommender):
    """Every user scores item i as ``scores[i]``; for tests only."""

    name = "fixed"

    def __init__(self, scores: list[float]):
        super().__init__(1, len(scores), ModelConfig())
        self.scores = torch.tensor(scores, dtype=torch.float32)

    def fit(self, features, train, on_epoch_end=None):
        return self

    def score_users(self, user_idx: torch.Tensor, history=None) -> torch.Tensor:
        return self.scores.expand(len(user_idx), -1)

    def state(self):
        return {"scores": self.scores}

    @classmethod
    def from_state(cls, n_users, n_items, config, state):
        return cls(state["scores"].tolist())
