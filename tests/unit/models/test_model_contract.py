"""The contract every registered model honours, run once per model (DESIGN.md section 6)."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from recsys_lib.config import ModelConfig, TrainConfig
from recsys_lib.errors import ConfigError, ModelError
from recsys_lib.evaluation import evaluate_recommender
from recsys_lib.models import MODELS, create_model, model_class
from recsys_lib.models.base import Recommender
from recsys_lib.serving.bundle import ModelBundle

QUICK = TrainConfig(epochs=2, batch_size=64, seed=3)


@pytest.fixture(params=sorted(MODELS))
def fitted(request, small) -> Recommender:
    model = create_model(ModelConfig(name=request.param, embedding_dim=8), small.n_users, small.n_items)
    assert model.fit(small, QUICK) is model
    return model


def test_scores_cover_the_catalogue(fitted, small):
    scores = fitted.score_users(torch.arange(small.n_users), small.history())
    assert scores.shape == (small.n_users, small.n_items)
    assert scores.dtype == torch.float32
    assert torch.isfinite(scores).all()


def test_recommend_never_returns_excluded_items_and_pads(fitted, small):
    history = small.matrix("train")
    dense = history.toarray() > 0
    dense[:, ::2] = True  # exclude every even item as well
    exclude = sp.csr_matrix(dense.astype(np.float32))
    users = np.arange(small.n_users)
    items, scores = fitted.recommend(users, k=small.n_items, history=small.history(), exclude=exclude, chunk_size=7)
    assert items.shape == scores.shape == (small.n_users, small.n_items)
    for u in users:
        shown = items[u][items[u] >= 0]
        assert not dense[u, shown].any()
        assert len(shown) == (~dense[u]).sum()  # every eligible item, then -1 padding
        assert (items[u, len(shown) :] == -1).all() and np.isneginf(scores[u, len(shown) :]).all()
        assert (np.diff(scores[u, : len(shown)]) <= 0).all()


def test_state_round_trip_gives_identical_scores(fitted, small):
    state = fitted.state()
    assert all(isinstance(t, torch.Tensor) for t in state.values())
    rebuilt = type(fitted).from_state(small.n_users, small.n_items, fitted.config, state)
    users, history = torch.arange(small.n_users), small.history()
    assert torch.equal(rebuilt.score_users(users, history), fitted.score_users(users, history))


def test_vectors_score_like_score_users(fitted, small):
    """Serving ranks with the vectors (an inner-product index), so they must give the model's scores."""
    items = fitted.item_vectors()
    users, history = np.arange(small.n_users), small.history()
    if items is None:
        assert fitted.user_vectors(users, history) is None
        return
    bias = fitted.item_bias()
    scores = fitted.user_vectors(users, history) @ items.T + (0 if bias is None else bias)
    expected = fitted.score_users(torch.from_numpy(users), history).numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)


def test_the_same_seed_gives_the_same_model(fitted, small):
    again = create_model(fitted.config, small.n_users, small.n_items).fit(small, QUICK)
    users, history = torch.arange(small.n_users), small.history()
    assert torch.equal(again.score_users(users, history), fitted.score_users(users, history))


def test_pyfunc_round_trip_gives_identical_recommendations(fitted, small, tmp_path):
    from mlflow.pyfunc import load_model

    from recsys_lib.registry.mlflow_registry import save_pyfunc

    bundle = ModelBundle.from_training(fitted, small, run_id="r1")
    users = [*small.user_ids[:8], "never-seen-user"]
    save_pyfunc(bundle, bundle.save(tmp_path / "bundle"), tmp_path / "pyfunc", users)
    served = load_model(str(tmp_path / "pyfunc")).predict(pd.DataFrame({"user_id": users}), params={"k": 5})
    pd.testing.assert_frame_equal(served.reset_index(drop=True), bundle.recommend_ids(np.array(users), 5))
    assert set(served["user_id"]) == set(users)


def test_from_state_rejects_wrong_shapes(fitted, small):
    with pytest.raises(ModelError, match="state"):
        type(fitted).from_state(small.n_users, small.n_items + 1, fitted.config, fitted.state())


def test_fit_rejects_features_of_another_size(fitted, small):
    other = create_model(fitted.config, small.n_users + 1, small.n_items)
    with pytest.raises(ModelError, match="users x"):
        other.fit(small, QUICK)


def test_unknown_model_name_lists_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"model.name 'no_such_model'.*mf_bpr.*popularity"):
        model_class("no_such_model")


@pytest.mark.parametrize("name", sorted(set(MODELS) - {"popularity"}))
def test_every_learned_model_beats_popularity_on_planted_preferences(name, planted):
    train = TrainConfig(epochs=20, batch_size=32, learning_rate=0.005, seed=0)
    baseline = evaluate_recommender(
        create_model(ModelConfig(name="popularity"), planted.n_users, planted.n_items).fit(planted, train),
        planted,
        ks=(10,),
    )
    model = create_model(ModelConfig(name=name, embedding_dim=32), planted.n_users, planted.n_items).fit(planted, train)
    result = evaluate_recommender(model, planted, ks=(10,))
    assert result["ndcg_at_10"] > 1.5 * baseline["ndcg_at_10"]
