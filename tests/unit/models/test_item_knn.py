import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from recsys_lib import schema
from recsys_lib.config import ItemKNNConfig, ModelConfig, TrainConfig
from recsys_lib.errors import ModelError
from recsys_lib.evaluation import evaluate_recommender
from recsys_lib.features import FeatureSet, UserHistory
from recsys_lib.models import ItemKNN, PopularityRecommender

# Users' train items; u0 bought item 0 five times (weight 5), which must count once (binarised).
#   users of item:  n0 = 4 (u0 u1 u2 u4), n1 = 5 (u0 u1 u3 u5 u6), n2 = 2 (u2 u3), n3 = 1 (u4)
#   co-occurrences: C01 = 2 (u0 u1), C02 = 1 (u2), C03 = 1 (u4), C12 = 1 (u3), C13 = C23 = 0
BASKETS = [[0, 1], [0, 1], [0, 2], [1, 2], [0, 3], [1], [1]]
N_ITEMS = 4


def _features(baskets: list[list[int]], n_items: int) -> FeatureSet:
    pairs = [(u, i) for u, basket in enumerate(baskets) for i in basket]
    train = pd.DataFrame(
        {
            schema.USER_IDX: [u for u, _ in pairs],
            schema.ITEM_IDX: [i for _, i in pairs],
            schema.WEIGHT: [5.0 if (u, i) == (0, 0) else 1.0 for u, i in pairs],
            schema.TIMESTAMP: pd.Timestamp("2024-01-01", tz="UTC"),
        }
    )
    return FeatureSet(
        user_ids=np.array([f"u{u}" for u in range(len(baskets))], dtype=object),
        item_ids=np.array([f"i{i}" for i in range(n_items)], dtype=object),
        items=pd.DataFrame({schema.ITEM_IDX: range(n_items), schema.ITEM_ID: [f"i{i}" for i in range(n_items)]}),
        train=train,
        validation=train.iloc[:0],
        test=train.iloc[:0],
    )


def _config(**knn: float) -> ModelConfig:
    return ModelConfig(name="item_knn", item_knn=ItemKNNConfig(**knn))


def _fit(baskets: list[list[int]], n_items: int, **knn: float) -> ItemKNN:
    features = _features(baskets, n_items)
    return ItemKNN(features.n_users, n_items, _config(**knn)).fit(features, TrainConfig())


def _history(*sequences: list[int], n_items: int = N_ITEMS) -> UserHistory:
    """One user per sequence, items oldest first."""
    indptr = np.r_[0, np.cumsum([len(s) for s in sequences])].astype(np.int64)
    return UserHistory(indptr, np.array([i for s in sequences for i in s], dtype=np.int64), n_items)


def test_similarities_are_shrunk_cosines_of_binarised_co_occurrences():
    r20, r10, r8 = math.sqrt(20), math.sqrt(10), math.sqrt(8)  # sqrt(n_i * n_j) for (0,1), (1,2), (0,2)
    expected = {
        0.0: [[0, 2 / r20, 1 / r8, 1 / 2], [2 / r20, 0, 1 / r10, 0], [1 / r8, 1 / r10, 0, 0], [1 / 2, 0, 0, 0]],
        1.0: [
            [0, 2 / (r20 + 1), 1 / (r8 + 1), 1 / 3],
            [2 / (r20 + 1), 0, 1 / (r10 + 1), 0],
            [1 / (r8 + 1), 1 / (r10 + 1), 0, 0],
            [1 / 3, 0, 0, 0],
        ],
    }
    for shrinkage, sims in expected.items():
        model = _fit(BASKETS, N_ITEMS, neighbours=10, shrinkage=shrinkage)
        assert model.similarity.dtype == np.float32 and model.similarity.shape == (N_ITEMS, N_ITEMS)
        np.testing.assert_allclose(model.similarity.toarray(), np.array(sims, dtype=np.float32), rtol=1e-6)
        assert model.similarity.nnz == 8  # zero diagonal, no stored zeros


def test_neighbour_cut_keeps_the_best_and_shrinkage_favours_well_supported_pairs():
    # row 0 without shrinkage: item 3 (1/2 = 0.5) beats item 1 (2/sqrt(20) = 0.447);
    # with shrinkage 1: item 1 (2/(sqrt(20)+1) = 0.365) beats item 3 (1/3 = 0.333).
    plain = _fit(BASKETS, N_ITEMS, neighbours=1, shrinkage=0.0).similarity
    assert plain.getnnz(axis=1).tolist() == [1, 1, 1, 1]
    assert [plain[i].indices.tolist() for i in range(N_ITEMS)] == [[3], [0], [0], [0]]
    assert plain[0, 3] == pytest.approx(0.5)
    shrunk = _fit(BASKETS, N_ITEMS, neighbours=1, shrinkage=1.0).similarity
    assert [shrunk[i].indices.tolist() for i in range(N_ITEMS)] == [[1], [0], [0], [0]]
    assert shrunk[0, 1] == pytest.approx(2 / (math.sqrt(20) + 1))


def test_neighbour_ties_go_to_the_lower_item_index():
    # sim(0, 1) = sim(0, 2) = 1 / sqrt(2 * 1); item 1 is kept
    model = _fit([[0, 2], [0, 1]], 3, neighbours=1, shrinkage=0.0)
    assert model.similarity[0].indices.tolist() == [1]
    items, scores = model.similar_items(np.array([0]), k=2)
    assert items.tolist() == [[1, -1]]
    np.testing.assert_allclose(scores, [[1 / math.sqrt(2), -np.inf]], rtol=1e-6)


def test_scores_sum_similarities_over_history_and_empty_histories_score_zero():
    model = _fit(BASKETS, N_ITEMS, neighbours=10, shrinkage=0.0)
    scores = model.score_users(torch.tensor([0, 1]), _history([2, 3, 2], []))
    sims = model.similarity.toarray()
    torch.testing.assert_close(scores[0], torch.from_numpy(sims[2] + sims[3]))  # the repeated 2 counts once
    assert scores.dtype == torch.float32 and torch.equal(scores[1], torch.zeros(N_ITEMS))


def test_recency_decay_favours_neighbours_of_recent_items():
    # item 0 ~ item 2 (1.0) and item 1 ~ item 3 (0.8); items 0 and 1 are seen, so excluded
    state = {
        "indptr": torch.tensor([0, 1, 2, 3, 4]),
        "indices": torch.tensor([2, 3, 0, 1]),
        "data": torch.tensor([1.0, 0.8, 1.0, 0.8]),
    }
    seen = sp.csr_matrix(np.array([[1, 1, 0, 0]], dtype=np.float32))
    for decay, sequence, best in [(0.0, [0, 1], 2), (0.5, [0, 1], 3), (0.5, [1, 0], 2)]:
        model = ItemKNN.from_state(1, N_ITEMS, _config(recency_decay=decay), state)
        items, _ = model.recommend(np.array([0]), k=1, history=_history(sequence), exclude=seen)
        assert items[0, 0] == best, (decay, sequence)
    # 1, then 0 twice: distinct recency puts 0 first (weight 1) and 1 second (weight 0.5)
    model = ItemKNN.from_state(1, N_ITEMS, _config(recency_decay=0.5), state)
    scores = model.score_users(torch.tensor([0]), _history([1, 0, 0]))
    torch.testing.assert_close(scores[0], torch.tensor([0.0, 0.0, 1.0, 0.4]))


def test_similar_items_are_the_best_neighbours_never_the_item_itself():
    model = _fit(BASKETS, N_ITEMS, neighbours=10, shrinkage=0.0)
    items, scores = model.similar_items(np.array([0, 3, 1]), k=3)
    assert items.tolist() == [[3, 1, 2], [0, -1, -1], [0, 2, -1]]
    np.testing.assert_allclose(scores[0], [1 / 2, 2 / math.sqrt(20), 1 / math.sqrt(8)], rtol=1e-6)
    assert scores.dtype == np.float32 and np.isneginf(scores[1, 1:]).all()
    assert model.similar_items(np.array([0]), k=1)[0].tolist() == [[3]]


def test_from_state_rejects_a_broken_csr():
    state = _fit(BASKETS, N_ITEMS).state()
    with pytest.raises(ModelError, match="state lacks"):
        ItemKNN.from_state(7, N_ITEMS, _config(), {"indptr": state["indptr"]})
    with pytest.raises(ModelError, match="state is not a valid CSR"):
        ItemKNN.from_state(7, N_ITEMS, _config(), {**state, "data": state["data"][:-1]})


def test_default_hyperparameters_beat_popularity_on_planted_preferences(planted):
    popularity = PopularityRecommender(planted.n_users, planted.n_items, ModelConfig(name="popularity"))
    knn = ItemKNN(planted.n_users, planted.n_items, ModelConfig(name="item_knn"))
    baseline = evaluate_recommender(popularity.fit(planted, TrainConfig()), planted, ks=(10,))
    result = evaluate_recommender(knn.fit(planted, TrainConfig()), planted, ks=(10,))
    assert result["n_users_evaluated"] == baseline["n_users_evaluated"] > 50
    assert result["ndcg_at_10"] > 3 * baseline["ndcg_at_10"]  # about 0.49 against 0.07
    assert result["ndcg_at_10"] > baseline["ndcg_at_10"] + 0.25
