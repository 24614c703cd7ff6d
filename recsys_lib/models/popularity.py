"""Popularity baseline: every user gets the items with the most summed training weight."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from recsys_lib import schema
from recsys_lib.errors import ModelError
from recsys_lib.models.base import Recommender

if TYPE_CHECKING:
    from collections.abc import Callable

    from recsys_lib.config import ModelConfig, TrainConfig
    from recsys_lib.features import FeatureSet, UserHistory
    from recsys_lib.training import RunLogger


class PopularityRecommender(Recommender):
    """Item score = summed interaction weight over the train split; the same for every user.

    Ties are broken by the lower item index (in :func:`~recsys_lib.search.topk.topk_excluding`).
    There are no epochs, so ``on_epoch_end`` is never called and ``logger`` never used.
    """

    name: ClassVar[str] = "popularity"
    reason_kind = schema.POPULAR

    def __init__(self, n_users: int, n_items: int, config: ModelConfig):
        super().__init__(n_users, n_items, config)
        self.item_scores = torch.zeros(n_items, dtype=torch.float32)  # (n_items,)

    def fit(
        self,
        features: FeatureSet,
        train: TrainConfig,
        on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
        logger: RunLogger | None = None,
    ) -> PopularityRecommender:
        """Sum each item's train weights in one pass; validation and test are not read. Returns self."""
        self.check_fits(features)
        totals = np.asarray(features.matrix("train").sum(axis=0), dtype=np.float64).ravel()  # (n_items,)
        self.item_scores = torch.from_numpy(totals.astype(np.float32))
        return self

    def score_users(self, user_idx: torch.Tensor, history: UserHistory) -> torch.Tensor:
        """``(n,) -> (n, n_items)`` float32, the same row for every user; a read-only broadcast
        view, so copy it before writing. ``history`` is not read."""
        return self.item_scores.expand(len(user_idx), -1)  # (n, n_items), a read-only view

    def state(self) -> dict[str, torch.Tensor]:
        """``item_scores`` (n_items,) float32, a copy."""
        return {"item_scores": self.item_scores.clone()}

    @classmethod
    def from_state(
        cls, n_users: int, n_items: int, config: ModelConfig, state: dict[str, torch.Tensor]
    ) -> PopularityRecommender:
        """Rebuild from :meth:`state`; ModelError unless ``item_scores`` has shape ``(n_items,)``."""
        scores = state.get("item_scores")
        if scores is None or tuple(scores.shape) != (n_items,):
            got = None if scores is None else tuple(scores.shape)
            raise ModelError(f"popularity state needs 'item_scores' of shape ({n_items},), got {got}")
        model = cls(n_users, n_items, config)
        model.item_scores = scores.detach().to(torch.float32).cpu().clone()
        return model
