"""The model bundle: persistence without pickle, raw-id serving, cold start, newer snapshots."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from recsys_lib import schema
from recsys_lib.config import ModelConfig, TrainConfig
from recsys_lib.errors import ModelError
from recsys_lib.features import FeatureSet
from recsys_lib.models import create_model
from recsys_lib.serving.bundle import ModelBundle


@pytest.fixture(scope="module")
def bundle(small: FeatureSet) -> ModelBundle:
    model = create_model(ModelConfig(name="mf_bpr", embedding_dim=8), small.n_users, small.n_items)
    model.fit(small, TrainConfig(epochs=2, seed=3))
    return ModelBundle.from_training(model, small, run_id="r1")


def test_save_load_round_trip_gives_identical_recommendations(bundle: ModelBundle, small: FeatureSet, tmp_path) -> None:
    loaded = ModelBundle.load(bundle.save(tmp_path / "b"))
    users = small.user_ids[:10]
    pd.testing.assert_frame_equal(bundle.recommend_ids(users, 5), loaded.recommend_ids(users, 5))
    assert loaded.metadata == {"run_id": "r1"}
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "bundle.json",
        "history.parquet",
        "item_ids.parquet",
        "user_ids.parquet",
        "weights.safetensors",
    ]


def test_recommend_ids_excludes_seen_items_and_serves_unknown_users(bundle: ModelBundle, small: FeatureSet) -> None:
    recs = bundle.recommend_ids(np.array([small.user_ids[0], "never-seen"]), 5)
    seen = set(small.item_ids[bundle.seen[0].indices])
    known = recs[recs[schema.USER_ID] == small.user_ids[0]]
    assert len(known) == 5 and not set(known[schema.ITEM_ID]) & seen
    cold = recs[recs[schema.USER_ID] == "never-seen"]
    top_popular = small.item_ids[np.argsort(-bundle.fallback_scores, kind="stable")[:5]]
    assert cold[schema.ITEM_ID].tolist() == list(top_popular)
    assert cold[schema.RANK].tolist() == [1, 2, 3, 4, 5]


def test_recommend_for_a_newer_snapshot_maps_ids_and_masks(bundle: ModelBundle, small: FeatureSet) -> None:
    # a newer snapshot: one new user, one new item, and the first catalogue item now unavailable
    items = small.items.copy()
    items.loc[0, schema.AVAILABLE] = False
    new_item = items.iloc[[0]].assign(**{schema.ITEM_ID: "brand-new", schema.AVAILABLE: True})
    items = pd.concat([items, new_item], ignore_index=True)
    newer = dataclasses.replace(
        small,
        user_ids=np.append(small.user_ids, "newcomer"),
        item_ids=items[schema.ITEM_ID].to_numpy(object),
        items=items,
    )
    users = np.arange(newer.n_users)
    top, scores = bundle.recommend_for(newer, users, 5)
    assert top.shape == (newer.n_users, 5) and (top >= 0).all()
    assert not (top == 0).any(), "an unavailable item was recommended"
    assert not (top == newer.n_items - 1).any(), "the model cannot score an item it never saw"
    history = newer.matrix(schema.TRAIN, schema.VALIDATION, schema.TEST)
    for u in users[:-1]:
        assert not set(top[u]) & set(history[u].indices)
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_loading_a_bundle_from_a_wrong_place_says_so(tmp_path) -> None:
    with pytest.raises(ModelError, match="cannot load model bundle"):
        ModelBundle.load(tmp_path)


def test_bundle_and_model_evaluation_agree_even_with_unavailable_items(bundle: ModelBundle, small: FeatureSet) -> None:
    from recsys_lib.evaluation.evaluate import evaluate_recommender
    from recsys_lib.serving.evaluate import evaluate_bundle

    items = small.items.copy()
    items.loc[: len(items) // 3, schema.AVAILABLE] = False
    features = dataclasses.replace(small, items=items)
    assert evaluate_bundle(bundle, features, ks=(5, 10)) == evaluate_recommender(bundle.model, features, ks=(5, 10))


def test_rerank_orders_known_items_by_the_users_scores_and_keeps_the_rest(
    bundle: ModelBundle, small: FeatureSet
) -> None:
    user = str(small.user_ids[0])
    known = [str(i) for i in small.item_ids[:6]]
    candidates = [known[0], "brand-new", known[1], known[2], known[3], "also-new", known[4], known[5]]
    reranked = bundle.rerank(user, candidates)
    assert sorted(reranked) == sorted(candidates)
    assert reranked[1] == "brand-new" and reranked[5] == "also-new"  # unknown items keep their slots
    scores = bundle.model.score_users(torch.tensor([0]), bundle.history)[0].numpy()
    by_score = sorted(known, key=lambda i: -scores[list(small.item_ids).index(i)])
    assert [i for i in reranked if i in known] == by_score
    assert bundle.rerank("never-seen-user", candidates) == candidates
    assert bundle.rerank(user, []) == []


def test_recommend_ids_from_many_threads_matches_one_at_a_time() -> None:
    """A model server calls predict from worker threads; each request must get its own user's rows
    (the scorer's index scores into buffers it keeps, and torch releases the GIL in a product)."""
    from concurrent.futures import ThreadPoolExecutor

    from recsys_lib.features import UserHistory

    n_users, n_items = 64, 30_000  # products long enough for two requests to overlap
    model = create_model(ModelConfig(name="mf_bpr", embedding_dim=32), n_users, n_items)
    empty = pd.DataFrame({schema.USER_IDX: [], schema.ITEM_IDX: [], schema.TIMESTAMP: []})
    bundle = ModelBundle(
        model,
        np.array([f"u{u}" for u in range(n_users)], dtype=object),
        np.array([f"i{i}" for i in range(n_items)], dtype=object),
        np.zeros(n_items, np.float32),
        UserHistory.from_pairs(empty, n_users, n_items),
    )
    requests = [np.array([f"u{u}"]) for u in range(n_users)] * 3
    expected = [bundle.recommend_ids(users, 5) for users in requests]
    with ThreadPoolExecutor(max_workers=4) as pool:
        served = list(pool.map(lambda users: bundle.recommend_ids(users, 5), requests))
    for want, got in zip(expected, served, strict=True):
        pd.testing.assert_frame_equal(want, got)
