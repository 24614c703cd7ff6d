"""Recommendation models behind one contract (:class:`~recsys_lib.models.base.Recommender`)."""

from __future__ import annotations

from recsys_lib.config import ModelConfig
from recsys_lib.errors import ConfigError
from recsys_lib.models.als import ALS
from recsys_lib.models.base import Recommender
from recsys_lib.models.item_knn import ItemKNN
from recsys_lib.models.mf_bpr import MatrixFactorizationBPR
from recsys_lib.models.popularity import PopularityRecommender
from recsys_lib.models.sequential import GRU4Rec, SASRec
from recsys_lib.models.two_tower import TwoTower

MODELS: dict[str, type[Recommender]] = {
    PopularityRecommender.name: PopularityRecommender,
    ItemKNN.name: ItemKNN,
    MatrixFactorizationBPR.name: MatrixFactorizationBPR,
    ALS.name: ALS,
    SASRec.name: SASRec,
    GRU4Rec.name: GRU4Rec,
    TwoTower.name: TwoTower,
}


def model_class(name: str) -> type[Recommender]:
    """The Recommender class registered under ``name``; ConfigError listing the known names otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(f"model.name {name!r} is unknown; allowed: {sorted(MODELS)}") from None


def create_model(config: ModelConfig, n_users: int, n_items: int) -> Recommender:
    """An unfitted model of kind ``config.name`` for ``n_users`` x ``n_items``."""
    return model_class(config.name)(n_users, n_items, config)


__all__ = [
    "ALS",
    "MODELS",
    "GRU4Rec",
    "ItemKNN",
    "MatrixFactorizationBPR",
    "PopularityRecommender",
    "Recommender",
    "SASRec",
    "TwoTower",
    "create_model",
    "model_class",
]
