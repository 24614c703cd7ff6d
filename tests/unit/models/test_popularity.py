import numpy as np
import torch

from recsys_lib.config import ModelConfig, TrainConfig
from recsys_lib.models import PopularityRecommender


def test_scores_are_summed_train_weights_for_every_user(small):
    model = PopularityRecommender(small.n_users, small.n_items, ModelConfig(name="popularity"))
    model.fit(small, TrainConfig())
    expected = np.zeros(small.n_items, dtype=np.float32)
    np.add.at(expected, small.train["item_idx"].to_numpy(), small.train["weight"].to_numpy())
    scores = model.score_users(torch.tensor([0, 5, 7]), small.history())
    for row in scores:
        np.testing.assert_allclose(row.numpy(), expected, rtol=1e-6)
    assert model.state()["item_scores"].shape == (small.n_items,)


def test_ties_are_broken_by_item_index(small):
    model = PopularityRecommender.from_state(
        2, 5, ModelConfig(name="popularity"), {"item_scores": torch.tensor([1.0, 3.0, 1.0, 3.0, 0.0])}
    )
    items, _ = model.recommend(np.array([0, 1]), k=5, history=small.history())
    assert items.tolist() == [[1, 3, 0, 2, 4]] * 2
