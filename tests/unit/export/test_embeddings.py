"""User and item vectors for an online re-ranker: rows, and a published table that reads back."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_lib import schema
from recsys_lib.config import FeaturesConfig, ModelConfig, TrainConfig
from recsys_lib.export import read_manifest, read_recommendations
from recsys_lib.export.embeddings import embedding_frames
from recsys_lib.export.publish import publish, stage_parts
from recsys_lib.features import build_features
from recsys_lib.models import create_model
from recsys_lib.models.bundle import ModelBundle
from recsys_lib.storage import ObjectStore
from tests.unit.models.conftest import planted_events


def _bundle(name: str) -> ModelBundle:
    events, items = planted_events(30, 20, 2, events_per_user=8, loyalty=0.8, seed=4)
    features = build_features(events, items, FeaturesConfig())
    model = create_model(ModelConfig(name=name, embedding_dim=8), features.n_users, features.n_items)
    return ModelBundle.from_training(model.fit(features, TrainConfig(epochs=1, seed=0)), features)


@pytest.mark.parametrize("name", ["mf_bpr", "sasrec"])
def test_rows_hold_every_known_user_and_item_with_the_models_vectors(name):
    bundle = _bundle(name)
    tables = embedding_frames(bundle, model_name="recsys-shop", model_version="3", chunk_size=7)
    items = pd.concat(tables["item_embeddings"], ignore_index=True)
    users = pd.concat(tables["user_embeddings"], ignore_index=True)
    assert items[schema.ITEM_ID].tolist() == [str(i) for i in bundle.item_ids]
    assert users[schema.USER_ID].tolist() == [str(u) for u in bundle.user_ids]
    np.testing.assert_array_equal(np.stack(items[schema.EMBEDDING]), bundle.model.item_vectors())
    expected = bundle.model.user_vectors(np.arange(bundle.model.n_users), bundle.history)
    np.testing.assert_allclose(np.stack(users[schema.EMBEDDING]), expected, rtol=1e-6)
    assert set(users[schema.MODEL_VERSION]) == {"3"}


def test_models_without_vectors_export_no_embeddings():
    assert embedding_frames(_bundle("item_knn"), model_name="m", model_version="1") == {}


def test_published_item_embeddings_read_back_through_the_manifest(mock_s3: ObjectStore):
    bundle = _bundle("mf_bpr")
    frames = embedding_frames(bundle, model_name="recsys-shop", model_version="1")["item_embeddings"]
    parts = stage_parts(mock_s3, "item_embeddings", "shop", "2026-01-01", "a1", frames, rows_per_file=6)
    publish(
        mock_s3, "item_embeddings", "shop", "2026-01-01", "a1", parts, model={"version": "1"}, snapshot_uri="s3://b/s/"
    )
    table = read_recommendations(mock_s3, "shop", table="item_embeddings")
    assert len(table) == bundle.model.n_items and len(parts) == -(-bundle.model.n_items // 6)
    np.testing.assert_allclose(np.stack(table[schema.EMBEDDING]), bundle.model.item_vectors())
    assert read_manifest(mock_s3, "shop", table="item_embeddings")["columns"][schema.EMBEDDING] == "list<float32>"
