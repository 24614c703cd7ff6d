"""User and item vectors for an online re-ranker: rows, and a published table that reads back."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from recsys_lib import schema
from recsys_lib.config import FeaturesConfig, ModelConfig, TrainConfig
from recsys_lib.errors import ConfigError, InvalidObjectError
from recsys_lib.export import read_embeddings, read_manifest, read_recommendations
from recsys_lib.export.batch import user_tables
from recsys_lib.export.embeddings import item_embedding_tables
from recsys_lib.export.publish import publish, stage_parts
from recsys_lib.features import FeatureSet, build_features
from recsys_lib.models import create_model
from recsys_lib.serving.bundle import ModelBundle
from recsys_lib.storage import ObjectStore
from tests.unit.models.conftest import planted_events


def _fitted(name: str) -> tuple[ModelBundle, FeatureSet]:
    events, items = planted_events(30, 20, 2, events_per_user=8, loyalty=0.8, seed=4)
    features = build_features(events, items, FeaturesConfig())
    model = create_model(ModelConfig(name=name, embedding_dim=8), features.n_users, features.n_items)
    return ModelBundle.from_training(model.fit(features, TrainConfig(epochs=1, seed=0)), features), features


def _user_chunks(bundle: ModelBundle, features: FeatureSet, *, chunk_size: int, model_version: str = "1") -> list:
    """Every chunk of ``user_tables`` for all of ``features``' users, top-3 and embeddings."""
    scorer, users = bundle.scorer(features), np.arange(features.n_users)
    tables = user_tables(
        scorer, users, 3, model_name="recsys-shop", model_version=model_version, chunk_size=chunk_size, embeddings=True
    )
    return list(tables)


@pytest.mark.parametrize("name", ["mf_bpr", "als", "sasrec"])
def test_rows_hold_every_known_user_and_item_with_the_models_vectors(name):
    bundle, features = _fitted(name)
    chunks = _user_chunks(bundle, features, chunk_size=7, model_version="3")
    assert len(chunks) == -(-features.n_users // 7) and all(set(c) == {"user_topk", "user_embeddings"} for c in chunks)
    users = pa.concat_tables([c["user_embeddings"] for c in chunks]).to_pandas()
    items = pa.concat_tables(
        item_embedding_tables(bundle, model_name="recsys-shop", model_version="3", chunk_size=7)
    ).to_pandas()
    assert items[schema.ITEM_ID].tolist() == [str(i) for i in bundle.item_ids]
    assert users[schema.USER_ID].tolist() == [str(u) for u in bundle.user_ids]
    np.testing.assert_array_equal(np.stack(items[schema.EMBEDDING]), bundle.model.item_vectors())
    expected = bundle.model.user_vectors(np.arange(bundle.model.n_users), bundle.history)
    np.testing.assert_allclose(np.stack(users[schema.EMBEDDING]), expected, rtol=1e-6)
    assert set(users[schema.MODEL_VERSION]) == {"3"} and set(users[schema.MODEL_NAME]) == {"recsys-shop"}


def test_user_vectors_are_computed_once_per_chunk_for_top_k_and_embeddings(monkeypatch):
    bundle, features = _fitted("sasrec")
    calls: list[int] = []
    original = bundle.model.user_vectors

    def counting(users, history):
        calls.append(len(users))
        return original(users, history)

    monkeypatch.setattr(bundle.model, "user_vectors", counting)
    chunks = _user_chunks(bundle, features, chunk_size=8)
    assert sum(c["user_embeddings"].num_rows for c in chunks) == features.n_users
    assert sum(calls) == features.n_users and len(calls) == -(-features.n_users // 8)


def test_models_without_vectors_export_no_embeddings():
    bundle, features = _fitted("item_knn")
    assert list(item_embedding_tables(bundle, model_name="m", model_version="1")) == []
    chunks = user_tables(bundle.scorer(features), np.arange(4), 3, model_name="m", model_version="1", embeddings=True)
    assert [set(c) for c in chunks] == [{"user_topk"}]


def test_published_item_embeddings_read_back_through_the_manifest(mock_s3: ObjectStore):
    bundle, _ = _fitted("mf_bpr")
    tables = item_embedding_tables(bundle, model_name="recsys-shop", model_version="1", chunk_size=6)
    parts = stage_parts(mock_s3, "item_embeddings", "shop", "2026-01-01", "a1", tables, rows_per_file=6)
    publish(
        mock_s3, "item_embeddings", "shop", "2026-01-01", "a1", parts, model={"version": "1"}, snapshot_uri="s3://b/s/"
    )
    table = read_recommendations(mock_s3, "shop", "2026-01-01", table="item_embeddings")  # no export set: by date
    assert len(table) == bundle.model.n_items and len(parts) == -(-bundle.model.n_items // 6)
    np.testing.assert_allclose(np.stack(table[schema.EMBEDDING]), bundle.model.item_vectors())
    assert (
        read_manifest(mock_s3, "shop", "2026-01-01", table="item_embeddings")["columns"][schema.EMBEDDING]
        == "list<float32>"
    )


def test_published_user_vectors_read_back_as_one_float32_matrix(mock_s3: ObjectStore):
    bundle, features = _fitted("sasrec")
    chunks = _user_chunks(bundle, features, chunk_size=7)
    parts = stage_parts(
        mock_s3, "user_embeddings", "shop", "2026-01-01", "a1", (c["user_embeddings"] for c in chunks), 10
    )
    publish(
        mock_s3, "user_embeddings", "shop", "2026-01-01", "a1", parts, model={"version": "1"}, snapshot_uri="s3://b/"
    )
    found = read_embeddings(mock_s3, "shop", "2026-01-01")
    assert found.vectors.dtype == np.float32 and found.manifest["model"] == {"version": "1"}
    assert found.ids.tolist() == features.user_ids.astype(str).tolist()
    np.testing.assert_array_equal(found.vectors, bundle.scorer(features).user_vectors(np.arange(features.n_users)))


def test_vectors_of_different_lengths_are_not_one_embedding_table(mock_s3: ObjectStore):
    ragged = pa.table(
        {
            schema.USER_ID: ["a", "b"],
            schema.EMBEDDING: pa.array([[0.1, 0.2], [0.3]], pa.list_(pa.float32())),
            schema.MODEL_NAME: ["m", "m"],
            schema.MODEL_VERSION: ["1", "1"],
        }
    )
    parts = stage_parts(mock_s3, "user_embeddings", "shop", "2026-01-01", "a1", [ragged], 10)
    publish(
        mock_s3, "user_embeddings", "shop", "2026-01-01", "a1", parts, model={"version": "1"}, snapshot_uri="s3://b/"
    )
    with pytest.raises(InvalidObjectError, match="vectors of 1 to 2 values"):
        read_embeddings(mock_s3, "shop", "2026-01-01")
    with pytest.raises(ConfigError, match="'user_topk' is not an embedding table"):
        read_embeddings(mock_s3, "shop", "2026-01-01", "user_topk")
