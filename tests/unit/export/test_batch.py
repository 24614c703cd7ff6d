"""Export rows: equal to a brute-force reference, never history or unavailable items; similar
items; "because you bought" reasons; pseudonymised ids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch

from recsys_lib import schema
from recsys_lib.config import FeaturesConfig, ModelConfig, TrainConfig
from recsys_lib.errors import ConfigError
from recsys_lib.export.batch import USER_TOPK, similar_item_tables, user_tables
from recsys_lib.export.pseudonym import pseudonym_key, pseudonymize
from recsys_lib.features import FeatureSet, build_features
from recsys_lib.models import create_model
from recsys_lib.serving.bundle import ModelBundle
from recsys_lib.serving.scorer import ALL_SPLITS
from tests.unit.models.conftest import planted_events
from tests.unit.search.test_topk import brute_force


def _fitted(name: str, unavailable: int = 3) -> tuple[ModelBundle, FeatureSet]:
    events, items = planted_events(40, 30, 3, events_per_user=8, loyalty=0.8, seed=5)
    items[schema.AVAILABLE] = [i >= unavailable for i in range(len(items))]  # the first few are sold out
    features = build_features(events, items, FeaturesConfig())
    model = create_model(ModelConfig(name=name, embedding_dim=8), features.n_users, features.n_items)
    return ModelBundle.from_training(model.fit(features, TrainConfig(epochs=2, seed=0)), features), features


def _export(bundle: ModelBundle, features: FeatureSet, k: int, **kw) -> pd.DataFrame:
    scorer = bundle.scorer(features)
    chunks = user_tables(scorer, np.arange(features.n_users), k, model_name="m", model_version="1", chunk_size=7, **kw)
    return pa.concat_tables([c[USER_TOPK] for c in chunks]).to_pandas()


@pytest.mark.parametrize("name", ["popularity", "item_knn", "mf_bpr", "als", "sasrec", "two_tower"])
def test_rows_equal_a_brute_force_ranking_without_history_or_unavailable_items(name):
    bundle, features = _fitted(name)
    k = 6
    rows = _export(bundle, features, k)

    scores = bundle.model.score_users(torch.arange(features.n_users), bundle.history).numpy()  # same index spaces
    excluded = features.matrix(*ALL_SPLITS).toarray() > 0
    excluded[:, features.unavailable_items()] = True
    ref_items, ref_scores = brute_force(scores, excluded, k)

    got = rows.groupby(schema.USER_ID, sort=False)
    for u in range(features.n_users):
        mine = got.get_group(str(features.user_ids[u]))
        expected = [str(features.item_ids[i]) for i in ref_items[u] if i >= 0]
        assert mine[schema.RANK].tolist() == list(range(1, len(expected) + 1))
        np.testing.assert_allclose(mine[schema.SCORE].to_numpy(), ref_scores[u, : len(expected)], rtol=1e-5, atol=1e-6)
        # the same items, up to the order of scores equal within float rounding
        assert _ranked_groups(mine[schema.ITEM_ID].tolist(), mine[schema.SCORE].to_numpy()) == _ranked_groups(
            expected, ref_scores[u, : len(expected)]
        )
    unavailable = set(features.item_ids[features.unavailable_items()].astype(str))
    assert not unavailable & set(rows[schema.ITEM_ID])
    seen = {(str(features.user_ids[u]), str(features.item_ids[i])) for u, i in zip(*excluded.nonzero(), strict=True)}
    assert not seen & set(zip(rows[schema.USER_ID], rows[schema.ITEM_ID], strict=True))


def _ranked_groups(items: list[str], scores: np.ndarray) -> list[frozenset[str]]:
    """Items grouped by (rounded) score, best first: the ranking up to near-ties."""
    groups: dict[float, set[str]] = {}
    for item, score in zip(items, np.round(scores, 4), strict=True):
        groups.setdefault(float(score), set()).add(item)
    return [frozenset(groups[s]) for s in sorted(groups, reverse=True)]


def test_item_knn_says_which_history_item_each_recommendation_comes_from():
    bundle, features = _fitted("item_knn")
    rows = _export(bundle, features, 5)
    assert rows[schema.REASON_ITEM_ID].notna().mean() > 0.9
    history = features.history(*ALL_SPLITS)
    sim = bundle.model.similarity
    ids = {str(v): i for i, v in enumerate(features.item_ids)}
    users = {str(v): i for i, v in enumerate(features.user_ids)}
    for row in rows.dropna(subset=[schema.REASON_ITEM_ID]).head(50).itertuples():
        user, reason, item = users[row.user_id], ids[row.reason_item_id], ids[row.item_id]
        assert reason in set(history.of(user))  # the reason is something the user did
        assert sim[reason, item] > 0  # that is similar to what is recommended


@pytest.mark.parametrize("name", ["popularity", "item_knn", "mf_bpr", "als", "sasrec", "gru4rec", "two_tower"])
def test_every_reason_is_a_history_item_and_says_its_kind(name):
    """Vector models name the history item closest to each recommendation (cosine of item
    vectors); item-kNN the largest share of the score; popularity none."""
    bundle, features = _fitted(name)
    rows = _export(bundle, features, 5)
    assert list(rows.columns) == list(schema.EXPORT_DTYPES)
    history = features.history(*ALL_SPLITS)
    users = {str(v): i for i, v in enumerate(features.user_ids)}
    items = {str(v): i for i, v in enumerate(features.item_ids)}
    explained = rows.dropna(subset=[schema.REASON_ITEM_ID])
    for row in explained.itertuples():
        assert items[row.reason_item_id] in set(history.of(users[row.user_id])), row
    kinds = set(rows[schema.REASON_KIND].dropna())
    if name == "popularity":
        assert explained.empty and kinds == {schema.POPULAR}
        return
    assert len(explained) / len(rows) > 0.9
    assert kinds == {schema.CO_PURCHASE if name == "item_knn" else schema.SIMILAR_ITEM}
    assert (explained[schema.REASON_KIND] == bundle.model.reason_kind).all()
    if name != "item_knn":  # closest by cosine among the user's newest history items
        vectors = bundle.model.item_vectors()
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        for row in explained.head(30).itertuples():
            recent = history.of(users[row.user_id])[-50:]
            sims = unit[recent] @ unit[items[row.item_id]]
            assert sims.max() == pytest.approx(float(unit[items[row.reason_item_id]] @ unit[items[row.item_id]]))


@pytest.mark.parametrize("name", ["item_knn", "mf_bpr", "als"])
def test_similar_items_never_name_the_item_itself_or_an_unavailable_one(name):
    bundle, features = _fitted(name)
    rows = pa.concat_tables(list(similar_item_tables(bundle.scorer(features), 4, model_name="m", model_version="1")))
    df = rows.to_pandas()
    assert list(df.columns) == list(schema.SIMILAR_ITEMS_DTYPES)
    assert len(df) and (df[schema.ITEM_ID] != df[schema.SIMILAR_ITEM_ID]).all()
    unavailable = set(features.item_ids[features.unavailable_items()].astype(str))
    assert not unavailable & set(df[schema.SIMILAR_ITEM_ID])
    assert (df.groupby(schema.ITEM_ID)[schema.SCORE].apply(lambda s: s.is_monotonic_decreasing)).all()


def test_popularity_has_no_similar_items():
    bundle, features = _fitted("popularity")
    assert list(similar_item_tables(bundle.scorer(features), 4, model_name="m", model_version="1")) == []


def test_pseudonymised_export_hides_user_ids_but_keeps_them_joinable(monkeypatch):
    bundle, features = _fitted("mf_bpr")
    key = b"0123456789abcdef-test-key"
    plain = _export(bundle, features, 3)
    hashed = _export(bundle, features, 3, user_id_map=lambda ids: pseudonymize(ids, key))
    assert not set(plain[schema.USER_ID]) & set(hashed[schema.USER_ID])
    assert hashed[schema.USER_ID].str.fullmatch(r"[0-9a-f]{32}").all()
    expected = pseudonymize(plain[schema.USER_ID].to_numpy(), key)
    assert hashed[schema.USER_ID].tolist() == list(expected)  # stable: the same user, the same pseudonym
    assert hashed[schema.ITEM_ID].tolist() == plain[schema.ITEM_ID].tolist()
    other = pseudonymize(np.array(["u0001"]), b"another-key-of-16-bytes")
    assert other[0] != pseudonymize(np.array(["u0001"]), key)[0]


def test_the_key_comes_from_the_environment_and_must_be_long(monkeypatch):
    monkeypatch.delenv("RECSYS_PSEUDONYM_KEY", raising=False)
    with pytest.raises(ConfigError, match="RECSYS_PSEUDONYM_KEY"):
        pseudonym_key()
    monkeypatch.setenv("RECSYS_PSEUDONYM_KEY", "short")
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        pseudonym_key()
    monkeypatch.setenv("RECSYS_PSEUDONYM_KEY", "a-long-enough-secret-key")
    assert pseudonym_key() == b"a-long-enough-secret-key"
    assert pseudonym_key("explicit-key-from-airflow") == b"explicit-key-from-airflow"
