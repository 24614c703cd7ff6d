"""ALS (implicit's alternating least squares) behind the Recommender contract; the contract itself
is tested for every model in test_model_contract.py."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from recsys_lib import schema
from recsys_lib.config import ALSConfig, ModelConfig, TrainConfig
from recsys_lib.errors import ConfigError, ModelError
from recsys_lib.features import FeatureSet
from recsys_lib.models import ALS, create_model
from recsys_lib.models.als import implicit_on_gpu
from recsys_lib.serving.bundle import ModelBundle

N_BLOCKS, USERS_PER_BLOCK, ITEMS_PER_BLOCK = 3, 12, 6


def _blocks() -> tuple[FeatureSet, np.ndarray]:
    """Three blocks of 12 users x 6 items: each user met every item of their block but one (a
    different one for each user of a block) and nothing outside it. Returns the features and each
    user's missing item, the one ALS must rank first once the items they met are excluded."""
    users, items, missing = [], [], []
    for u in range(N_BLOCKS * USERS_PER_BLOCK):
        block = u // USERS_PER_BLOCK
        left_out = block * ITEMS_PER_BLOCK + u % ITEMS_PER_BLOCK
        missing.append(left_out)
        for i in range(block * ITEMS_PER_BLOCK, (block + 1) * ITEMS_PER_BLOCK):
            if i != left_out:
                users.append(u)
                items.append(i)
    n_users, n_items = N_BLOCKS * USERS_PER_BLOCK, N_BLOCKS * ITEMS_PER_BLOCK
    train = pd.DataFrame(
        {
            schema.USER_IDX: users,
            schema.ITEM_IDX: items,
            schema.WEIGHT: np.ones(len(users), dtype=np.float32),
            schema.TIMESTAMP: pd.Timestamp("2024-01-01", tz="UTC"),
        }
    )
    features = FeatureSet(
        user_ids=np.array([f"u{u}" for u in range(n_users)], dtype=object),
        item_ids=np.array([f"i{i}" for i in range(n_items)], dtype=object),
        items=pd.DataFrame({schema.ITEM_IDX: range(n_items), schema.ITEM_ID: [f"i{i}" for i in range(n_items)]}),
        train=train,
        validation=train.iloc[:0],
        test=train.iloc[:0],
    )
    return features, np.array(missing)


def _als(features: FeatureSet, dim: int = 8, **als: float) -> ALS:
    return ALS(features.n_users, features.n_items, ModelConfig(name="als", embedding_dim=dim, als=ALSConfig(**als)))


def test_block_structure_ranks_the_missing_in_block_item_first_and_other_blocks_last():
    features, missing = _blocks()
    model = _als(features, dim=N_BLOCKS).fit(features, TrainConfig(seed=0))  # a factor per block
    users, history = np.arange(features.n_users), features.history()
    items, _ = model.recommend(users, k=features.n_items, history=history, exclude=features.matrix())
    np.testing.assert_array_equal(items[:, 0], missing)  # the one unmet item of the user's own block
    scores = model.score_users(torch.from_numpy(users), history).numpy()  # (n_users, n_items)
    own = np.arange(features.n_items)[None, :] // ITEMS_PER_BLOCK == (users // USERS_PER_BLOCK)[:, None]
    assert (np.where(own, scores, np.inf).min(axis=1) > np.where(own, -np.inf, scores).max(axis=1) + 0.5).all()
    # item vectors: an item's nearest neighbours are the rest of its block
    neighbours, _ = model.similar_items(np.array([0, 7, 17]), k=ITEMS_PER_BLOCK - 1)
    assert (neighbours // ITEMS_PER_BLOCK == np.array([[0], [1], [2]])).all()
    # reasons: the closest history item is from the recommended item's block
    reasons = model.explain(users[:1], items[:1, :1], history)
    assert reasons[0, 0] // ITEMS_PER_BLOCK == 0 and reasons[0, 0] != items[0, 0]


def test_each_iteration_is_an_epoch_and_the_last_carries_validation_ndcg(small):
    calls = []
    model = _als(small, iterations=4).fit(
        small, TrainConfig(seed=1), on_epoch_end=lambda epoch, metrics: calls.append((epoch, metrics))
    )
    assert [epoch for epoch, _ in calls] == [0, 1, 2, 3]
    assert [set(metrics) for _, metrics in calls] == [{"epoch_seconds"}] * 3 + [{"epoch_seconds", "val_ndcg_at_10"}]
    assert 0 <= calls[-1][1]["val_ndcg_at_10"] <= 1
    assert model.history == [metrics for _, metrics in calls] and model.best_epoch == 3


def test_without_validation_users_there_is_no_best_epoch(small):
    no_validation = dataclasses.replace(small, validation=small.validation.iloc[:0])
    model = _als(no_validation, iterations=2).fit(no_validation, TrainConfig(seed=1))
    assert model.history == [{"epoch_seconds": h["epoch_seconds"]} for h in model.history] and len(model.history) == 2
    assert model.best_epoch is None


def test_refit_trains_again_on_train_and_validation(small):
    calls = []
    train = TrainConfig(seed=1, refit=True)
    model = _als(small, iterations=2).fit(
        small, train, on_epoch_end=lambda epoch, metrics: calls.append((epoch, metrics))
    )
    assert [epoch for epoch, _ in calls] == [0, 1, 2, 3]
    assert set(calls[2][1]) == {"refit_epoch_seconds"} and model.best_epoch == 1
    first = _als(small, iterations=2).fit(small, TrainConfig(seed=1))
    everything = _als(small, iterations=2).fit(small.with_validation_in_train(), TrainConfig(seed=1))
    users, history = torch.arange(small.n_users), small.history()
    assert torch.equal(model.score_users(users, history), everything.score_users(users, history))
    assert not torch.equal(model.score_users(users, history), first.score_users(users, history))


def test_metrics_reach_the_pipelines_mlflow_run_at_their_iteration(small, tmp_path):
    from mlflow import MlflowClient

    from recsys_lib.training import RunLogger

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("als")).info.run_id
    _als(small, iterations=3).fit(small, TrainConfig(seed=1, refit=True), logger=RunLogger(uri, run_id))

    def steps(key: str) -> list[int]:
        return [m.step for m in client.get_metric_history(run_id, key)]

    assert (steps("epoch_seconds"), steps("val_ndcg_at_10"), steps("refit_epoch_seconds")) == (
        [0, 1, 2],
        [2],
        [3, 4, 5],
    )
    assert "epoch" not in client.get_run(run_id).data.metrics and client.get_run(run_id).info.status == "RUNNING"


def test_another_seed_gives_another_model(small):
    users, history = torch.arange(small.n_users), small.history()
    one, other = (_als(small).fit(small, TrainConfig(seed=s)).score_users(users, history) for s in (1, 2))
    assert not torch.equal(one, other)


def test_implicit_runs_on_torchs_thread_count(small, monkeypatch):
    threads = []

    class Spy(ALS):
        def estimator(self, train, on_gpu, num_threads):
            threads.append(num_threads)
            return super().estimator(train, on_gpu, num_threads)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        Spy(small.n_users, small.n_items, ModelConfig(name="als", embedding_dim=4)).fit(small, TrainConfig())
    finally:
        torch.set_num_threads(before)
    assert threads == [2]


def test_factors_follow_embedding_dim_and_the_config(small):
    model = _als(small, dim=6, regularization=0.5, alpha=4.0, iterations=3)
    estimator = model.estimator(TrainConfig(seed=9), on_gpu=False, num_threads=1)
    assert (estimator.factors, estimator.regularization, estimator.alpha, estimator.iterations) == (6, 0.5, 4.0, 3)
    assert estimator.random_state == 9
    model.fit(small, TrainConfig(seed=9))
    assert model.item_vectors().shape == (small.n_items, 6) and model.item_bias() is None
    assert model.user_vectors(np.array([3, 1]), small.history()).shape == (2, 6)


def test_the_accelerator_setting_picks_the_device():
    import implicit.gpu

    assert implicit_on_gpu(TrainConfig(accelerator="cpu")) is False
    assert implicit_on_gpu(TrainConfig(accelerator="auto")) is (implicit.gpu.HAS_CUDA and torch.cuda.is_available())
    if not implicit.gpu.HAS_CUDA:
        with pytest.raises(ConfigError, match=r"train.accelerator='cuda'.*'auto' or 'cpu'"):
            implicit_on_gpu(TrainConfig(accelerator="cuda"))


def test_bundle_saves_and_loads_the_factors(small, tmp_path):
    model = _als(small).fit(small, TrainConfig(seed=4))
    bundle = ModelBundle.from_training(model, small, run_id="r1")
    loaded = ModelBundle.load(bundle.save(tmp_path / "bundle"))
    assert isinstance(loaded.model, ALS) and loaded.model.config == model.config
    torch.testing.assert_close(loaded.model.user_factors, model.user_factors, rtol=0, atol=0)
    np.testing.assert_array_equal(loaded.model.item_vectors(), model.item_vectors())
    users = np.array([*small.user_ids[:5], "never-seen-user"])
    pd.testing.assert_frame_equal(loaded.recommend_ids(users, 5), bundle.recommend_ids(users, 5))


def test_a_saved_model_loads_and_serves_without_implicit(small, tmp_path, monkeypatch):
    bundle = ModelBundle.from_training(_als(small).fit(small, TrainConfig()), small)
    path, users = bundle.save(tmp_path / "bundle"), np.array(small.user_ids[:3])
    expected = bundle.recommend_ids(users, 4)
    for name in [m for m in sys.modules if m == "implicit" or m.startswith("implicit.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "implicit", None)  # any import of implicit now fails
    loaded = ModelBundle.load(path)
    pd.testing.assert_frame_equal(loaded.recommend_ids(users, 4), expected)
    assert loaded.model.similar_items(np.array([0]), k=2) is not None
    with pytest.raises(ImportError):
        _als(small).fit(small, TrainConfig())


def test_from_state_names_the_missing_factors(small):
    state = _als(small).fit(small, TrainConfig()).state()
    with pytest.raises(ModelError, match=r"als state lacks \['item_factors'\]"):
        ALS.from_state(small.n_users, small.n_items, ModelConfig(name="als"), {"user_factors": state["user_factors"]})
    with pytest.raises(ModelError, match="als state needs"):
        ALS.from_state(small.n_users, small.n_items, ModelConfig(name="als"), {**state, "item_factors": torch.zeros(3)})


def test_create_model_builds_als():
    assert isinstance(create_model(ModelConfig(name="als"), 3, 4), ALS)
