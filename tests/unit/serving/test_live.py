"""LiveScorer: one request at a time, consistent with the batch export's scorer, sessions scored."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from recsys_lib import schema
from recsys_lib.config import ModelConfig, TrainConfig
from recsys_lib.export.batch import USER_EMBEDDINGS, USER_TOPK, user_tables
from recsys_lib.features import FeatureSet
from recsys_lib.models import MODELS, create_model
from recsys_lib.serving import ALL_SPLITS, ModelBundle
from recsys_lib.serving.live import MODEL, POPULARITY, SESSION, LiveScorer, Request, UserVectors

QUICK = TrainConfig(epochs=2, batch_size=64, seed=3)


@pytest.fixture(scope="module")
def catalogue(small: FeatureSet) -> FeatureSet:
    """``small`` with its first two items unavailable."""
    items = small.items.copy()
    items.loc[:1, schema.AVAILABLE] = False
    return dataclasses.replace(small, items=items)


@pytest.fixture(scope="module", params=sorted(MODELS))
def live(request, small: FeatureSet, catalogue: FeatureSet) -> LiveScorer:
    model = create_model(ModelConfig(name=request.param, embedding_dim=8), small.n_users, small.n_items)
    model.fit(small, QUICK)
    return LiveScorer(ModelBundle.from_training(model, small).scorer(catalogue))


def test_a_request_without_a_session_gets_the_exported_row(live: LiveScorer, catalogue: FeatureSet) -> None:
    """The export's BundleScorer.topk (all users in one chunk) and the live path (one user) give the
    same items in the same order, and the same score bits where a user's vector or scores do not
    come out of a neural encoder: a batched CPU matrix product rounds a row differently from the
    same row alone (measured: nn.Linear, 1,000 rows vs 1, 2e-7), so GRU4Rec, SASRec and the
    two-tower agree to float32 rounding."""
    rows = np.arange(catalogue.n_users)
    items, scores = live.scorer.topk(rows, 7)
    encoded = live.model.name in ("gru4rec", "sasrec", "two_tower")
    for row in rows:
        got = live.recommend(str(catalogue.user_ids[row]), [], 7)
        keep = items[row] >= 0
        assert got.item_ids == catalogue.item_ids[items[row][keep]].astype(str).tolist()
        if encoded:
            np.testing.assert_allclose(np.array(got.scores, dtype=np.float32), scores[row][keep], rtol=1e-5)
        else:
            np.testing.assert_array_equal(np.array(got.scores, dtype=np.float32), scores[row][keep])
        assert got.source == MODEL and got.ignored == []


def test_with_the_published_user_vectors_every_model_answers_the_exported_row_bit_for_bit(
    live: LiveScorer, catalogue: FeatureSet
) -> None:
    """What ``recsys serve`` does when the newest export published user vectors of the served
    version: a known user's request without a session is scored with the exported vector, so
    neural encoders too give the exported items, order and score bits. The export here is
    ``user_tables``, the batch export's own rows, in chunks of 16 users."""
    users = np.arange(catalogue.n_users)
    chunks = list(user_tables(live.scorer, users, 7, model_name="m", model_version="1", chunk_size=16, embeddings=True))
    topk = pa.concat_tables([c[USER_TOPK] for c in chunks]).to_pandas()
    published = None
    if live.scorer.index is not None:  # a model with vectors publishes them
        table = pa.concat_tables([c[USER_EMBEDDINGS] for c in chunks])
        ids = table.column(schema.USER_ID).to_numpy(zero_copy_only=False)
        vectors = np.stack(table.column(schema.EMBEDDING).to_numpy(zero_copy_only=False))
        published = UserVectors.align(catalogue.user_ids.astype(str), ids, vectors, "user_embeddings of the test")
    served = LiveScorer(live.scorer, user_vectors=published)
    for user, rows in topk.groupby(schema.USER_ID):
        rows = rows.sort_values(schema.RANK)
        got = served.recommend(str(user), [], 7)
        assert got.item_ids == rows[schema.ITEM_ID].tolist() and got.source == MODEL
        np.testing.assert_array_equal(np.array(got.scores, dtype=np.float32), rows[schema.SCORE].to_numpy(np.float32))
    # a batch interleaving sessionless users (published vectors) and sessions (scored live)
    ids = [str(u) for u in catalogue.user_ids[:5]]
    requests = [Request(u, ["i0003", f"i000{j + 4}"] if j % 2 else [], 5, []) for j, u in enumerate(ids)]
    together = served.recommend_many(requests)
    for request, got in zip(requests, together, strict=True):
        alone = served.recommend(request.user_id, request.recent_items, request.k)
        if request.recent_items:  # encoded two at a time vs alone: float32 rounding apart
            assert got.item_ids == alone.item_ids
            np.testing.assert_allclose(got.scores, alone.scores, rtol=1e-5)
        else:
            assert got == alone


def test_published_user_vectors_must_fit_the_scorer(live: LiveScorer) -> None:
    n = len(live.scorer.user_ids)
    with pytest.raises(ValueError, match="aligned to 3 users"):
        LiveScorer(live.scorer, user_vectors=UserVectors(np.zeros(3, np.int64), np.zeros((3, 8), np.float32), "t"))
    if live.scorer.index is not None:
        with pytest.raises(ValueError, match="5-value vectors"):
            LiveScorer(live.scorer, user_vectors=UserVectors(np.zeros(n, np.int64), np.zeros((1, 5), np.float32), "t"))


def test_never_recommends_history_session_excluded_or_unavailable_items(
    live: LiveScorer, catalogue: FeatureSet
) -> None:
    user = str(catalogue.user_ids[3])
    history = set(catalogue.item_ids[catalogue.matrix(*ALL_SPLITS)[3].indices])
    recent, exclude = ["i0005", "i0011"], ["i0020", "nope"]
    got = live.recommend(user, recent, 30, exclude=exclude)
    unavailable = set(catalogue.item_ids[catalogue.unavailable_items()])
    assert not set(got.item_ids) & (history | set(recent) | set(exclude) | unavailable)
    assert len(got.item_ids) == catalogue.n_items - len(history | set(recent) | {"i0020"} | unavailable)
    assert got.ignored == ["nope"]
    assert got.scores == sorted(got.scores, reverse=True)


def test_a_new_visitor_with_a_session_is_personalised(live: LiveScorer, catalogue: FeatureSet) -> None:
    """Sequence models, item-kNN and the two-tower score the session itself; MF folds it in;
    only popularity serves its fallback."""
    session = ["i0003", "i0004", "i0007"]
    got = live.recommend(None, session, 5)
    nobody = live.recommend("never-seen", [], 5)
    assert nobody.source == POPULARITY
    expected = POPULARITY if live.model.name == "popularity" else SESSION
    assert got.source == expected
    assert not set(got.item_ids) & set(session)
    if expected == SESSION:  # two sessions give two different lists (the session is read)
        other = live.recommend(None, ["i0025", "i0026", "i0028"], 5)
        assert other.item_ids != got.item_ids or other.scores != got.scores


def test_a_known_users_session_extends_their_history(live: LiveScorer, catalogue: FeatureSet) -> None:
    if not live.model.scores_from_history:
        pytest.skip("MF and popularity keep a known user's own scores")
    user = str(catalogue.user_ids[5])
    plain = live.recommend(user, [], 5)
    with_session = live.recommend(user, ["i0013", "i0017"], 5)
    assert with_session.source == SESSION
    assert (with_session.item_ids, with_session.scores) != (plain.item_ids, plain.scores)


def test_rerank_orders_candidates_by_the_recommendation_scores(live: LiveScorer, catalogue: FeatureSet) -> None:
    user = str(catalogue.user_ids[2])
    top = live.recommend(user, [], 6)
    candidates = ["unknown-1", *reversed(top.item_ids), "i0000", "unknown-2"]  # i0000 is unavailable
    got = live.rerank(user, [], candidates)
    assert got.item_ids[6:] == ["unknown-1", "i0000", "unknown-2"] and got.scores[6:] == [None] * 3
    assert dict(zip(got.item_ids[:6], got.scores[:6], strict=True)) == dict(zip(top.item_ids, top.scores, strict=True))
    assert got.scores[:6] == sorted(got.scores[:6], reverse=True)  # equal scores keep the incoming order
    assert got.ignored == ["unknown-1", "unknown-2"]


def test_rerank_leaves_the_list_alone_for_someone_unknown_without_a_session(live: LiveScorer) -> None:
    candidates = ["i0009", "i0004", "i0012"]
    got = live.rerank("never-seen", [], candidates)
    assert got.item_ids == candidates and got.source == POPULARITY


def test_similar_items_are_available_and_never_the_item_itself(live: LiveScorer, catalogue: FeatureSet) -> None:
    got = live.similar("i0010", 5)
    if live.model.name == "popularity":
        assert got is None
        return
    assert got is not None and "i0010" not in got.item_ids and len(got.item_ids) <= 5
    assert not {"i0000", "i0001"} & set(got.item_ids)
    with pytest.raises(KeyError):
        live.similar("nope", 5)


def test_reasons_and_their_kinds_are_the_exports(live: LiveScorer, catalogue: FeatureSet) -> None:
    rows = np.arange(catalogue.n_users)
    items, _ = live.scorer.topk(rows, 5)
    reasons = live.scorer.reasons(rows, items)
    kinds = live.scorer.reason_kinds(rows, items, reasons)
    for row in rows[:12]:
        got = live.recommend(str(catalogue.user_ids[row]), [], 5)
        keep = items[row] >= 0
        named = reasons[row][keep] if reasons is not None else np.full(int(keep.sum()), -1)
        assert got.reasons == [str(catalogue.item_ids[r]) if r >= 0 else None for r in named]
        assert got.reason_kinds == list(kinds[row][keep])
    assert {k for k in kinds.ravel() if k is not None} <= set(schema.REASON_KINDS)


def test_item_knn_says_why(small: FeatureSet) -> None:
    model = create_model(ModelConfig(name="item_knn"), small.n_users, small.n_items).fit(small, QUICK)
    live = LiveScorer(ModelBundle.from_training(model, small).scorer(small))
    session = ["i0003", "i0004"]
    got = live.recommend(None, session, 5)
    history = set(pd.Series(session))
    assert got.reasons and all(r is None or r in history for r in got.reasons)
    assert any(r is not None for r in got.reasons)


def test_a_batch_of_requests_gets_what_each_would_get_alone(live: LiveScorer, catalogue: FeatureSet) -> None:
    """The service scores the requests that arrived together in one pass: mixed kinds and k."""
    users = [str(u) for u in catalogue.user_ids[:3]]
    requests = [
        Request(users[0], [], 5, []),
        Request(None, ["i0003", "i0004"], 3, ["i0010"]),
        Request("never-seen", [], 4, []),
        Request(users[1], ["i0012", "nope"], 6, []),
        Request(users[2], [], 2, ["i0005"]),
    ]
    together = live.recommend_many(requests)
    encoded = live.model.name in ("gru4rec", "sasrec", "two_tower")
    for request, got in zip(requests, together, strict=True):
        alone = live.recommend(request.user_id, request.recent_items, request.k, request.exclude)
        assert (got.item_ids, got.source, got.ignored, got.reasons) == (
            alone.item_ids, alone.source, alone.ignored, alone.reasons,
        )  # fmt: skip
        if encoded:
            np.testing.assert_allclose(got.scores, alone.scores, rtol=1e-5)
        else:
            assert got.scores == alone.scores
