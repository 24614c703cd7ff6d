"""Where the live service's model comes from: a saved bundle folder (recsys serve --bundle), and
the user vectors a published export hands the champion."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from recsys_lib.config import ModelConfig, TrainConfig
from recsys_lib.errors import ModelError
from recsys_lib.export.batch import USER_EMBEDDINGS, USER_TOPK, user_tables
from recsys_lib.export.pseudonym import pseudonymize
from recsys_lib.export.publish import publish, stage_parts
from recsys_lib.export.reader import read_embeddings, read_recommendations
from recsys_lib.features import FeatureSet
from recsys_lib.live.source import BundleFolderSource, Target, published_user_vectors
from recsys_lib.models import create_model
from recsys_lib.registry.mlflow_registry import save_pyfunc
from recsys_lib.serving import BundleScorer, ModelBundle
from recsys_lib.serving.live import LiveScorer
from recsys_lib.storage import ObjectStore

DT = "2026-10-21"
SERVED = Target("7", "s3://b/f/", DT, run_id="r", attempt="a1")  # what the export below published
KEY = "a-test-key-that-is-long-enough-to-be-a-secret"


def test_a_bundle_folder_and_an_mlflow_model_folder_serve_the_same_model(small: FeatureSet, tmp_path) -> None:
    model = create_model(ModelConfig(name="mf_bpr", embedding_dim=8), small.n_users, small.n_items)
    bundle = ModelBundle.from_training(model.fit(small, TrainConfig(epochs=1, seed=3)), small)
    folder = bundle.save(tmp_path / "bundle")
    save_pyfunc(bundle, folder, tmp_path / "pyfunc", [str(u) for u in small.user_ids[:3]])
    answers = []
    for path in (folder, tmp_path / "pyfunc"):
        source = BundleFolderSource(path)
        loaded = source.load(source.target())
        assert loaded.model == "mf_bpr" and loaded.version == "local"
        answers.append(loaded.scorer.recommend(str(small.user_ids[0]), [], 5))
    assert answers[0] == answers[1]
    expected = bundle.recommend_ids([str(small.user_ids[0])], 5)
    assert answers[0].item_ids == expected["item_id"].tolist()


def test_a_folder_that_is_not_a_bundle_says_so(tmp_path) -> None:
    source = BundleFolderSource(tmp_path)
    with pytest.raises(ModelError, match=str(tmp_path)):
        source.load(source.target())


def _exported(store: ObjectStore, small: FeatureSet, *, pseudonymized: bool = False) -> BundleScorer:
    """A GRU4Rec champion (version 7) whose export of DT published user_topk and user_embeddings
    (as the export task stages and publishes them); returns its scorer."""
    model = create_model(ModelConfig(name="gru4rec", embedding_dim=8), small.n_users, small.n_items)
    scorer = ModelBundle.from_training(model.fit(small, TrainConfig(epochs=1, seed=3)), small).scorer(small)
    id_map = (lambda ids: pseudonymize(ids, KEY.encode())) if pseudonymized else None
    chunks = list(
        user_tables(
            scorer, np.arange(small.n_users), 5, model_name="gru4rec", model_version="7", chunk_size=16,
            embeddings=True, user_id_map=id_map,
        )
    )  # fmt: skip
    for table in (USER_EMBEDDINGS, USER_TOPK):  # user_topk last: its pointer names the export set
        parts = stage_parts(store, table, "shop", DT, "a1", (c[table] for c in chunks), rows_per_file=40)
        model = {"name": "recsys-shop", "version": "7", "run_id": "r"}
        publish(
            store, table, "shop", DT, "a1", parts, model=model, snapshot_uri="s3://b/s/", pseudonymized=pseudonymized
        )
    return scorer


def test_the_champion_answers_known_users_with_the_vectors_its_export_published(mock_s3, small, monkeypatch) -> None:
    """GRU4Rec's encoder run on one user rounds differently from the export's batch of 16; with the
    published vectors the live answer is the exported row, bit for bit, and no sessionless request
    runs the encoder."""
    scorer = _exported(mock_s3, small)
    found = read_embeddings(mock_s3, "shop", DT)
    assert found.vectors.dtype == np.float32 and found.vectors.shape == (small.n_users, 8)
    assert found.manifest["model"]["version"] == "7" and found.vectors.flags.writeable
    vectors = published_user_vectors(mock_s3, "shop", SERVED, scorer)
    assert vectors is not None and vectors.source == f"user_embeddings of {DT}"
    live = LiveScorer(scorer, user_vectors=vectors)

    def no_encoder(*args: object) -> None:
        raise AssertionError("a known user without a session ran the encoder")

    monkeypatch.setattr(scorer.model, "user_vectors", no_encoder)
    for user, rows in read_recommendations(mock_s3, "shop", DT).groupby("user_id"):
        got = live.recommend(str(user), [], 5)
        assert got.item_ids == rows["item_id"].tolist()
        np.testing.assert_array_equal(np.array(got.scores, dtype=np.float32), rows["score"].to_numpy(np.float32))


@pytest.mark.parametrize(
    "change",
    [
        {"version": "8"},  # the alias moved since the export
        {"run_id": "another-run"},  # version 7 of a registry that was reset
        {"attempt": "a2"},  # the date was published again (without vectors): a1's are stale
        {"features_dt": "2026-10-22"},  # no export that day
    ],
)
def test_vectors_of_another_model_or_export_are_not_used(mock_s3, small, change) -> None:
    scorer = _exported(mock_s3, small)
    assert published_user_vectors(mock_s3, "shop", dataclasses.replace(SERVED, **change), scorer) is None


def test_pseudonymised_vectors_need_the_exports_key(mock_s3, small, monkeypatch, caplog) -> None:
    scorer = _exported(mock_s3, small, pseudonymized=True)
    target = SERVED
    monkeypatch.delenv("RECSYS_PSEUDONYM_KEY", raising=False)
    with caplog.at_level(logging.WARNING):
        assert published_user_vectors(mock_s3, "shop", target, scorer) is None
    assert "pseudonymised" in caplog.text and "RECSYS_PSEUDONYM_KEY" in caplog.text
    monkeypatch.setenv("RECSYS_PSEUDONYM_KEY", KEY)
    vectors = published_user_vectors(mock_s3, "shop", target, scorer)
    assert vectors is not None and (vectors.row_of >= 0).all()
    np.testing.assert_array_equal(vectors.vectors[vectors.row_of], scorer.user_vectors(np.arange(small.n_users)))
    monkeypatch.setenv("RECSYS_PSEUDONYM_KEY", KEY.upper())  # not the export's key: no id matches
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert published_user_vectors(mock_s3, "shop", target, scorer) is None
    assert f"only 0 of the {DT} export's {small.n_users} user vectors match" in caplog.text
