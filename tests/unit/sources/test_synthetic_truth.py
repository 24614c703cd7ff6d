"""The synthetic shop's planted truth: replayed exactly, and the generator's output unchanged by it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recsys_lib import schema
from recsys_lib.errors import ConfigError, SourceError
from recsys_lib.sources import synthetic
from recsys_lib.sources.files import list_raw_files
from recsys_lib.sources.synthetic import generate_shop, shop_truth
from recsys_lib.sources.synthetic_params import read_shop_params, shop_params_key, write_shop_params
from recsys_lib.storage import ObjectStore, layout

END = datetime(2024, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kwargs", "events_hash", "items_hash"),
    [
        (dict(n_users=120, n_items=60, days=20, seed=0), 3358142372492730802, 14196689835098089342),
        (
            dict(n_users=90, n_items=30, n_categories=3, n_brands=5, days=7, seed=11),
            14706318890027684017,
            14890213086748294885,
        ),
    ],
)
def test_generate_shop_output_is_unchanged(kwargs: dict[str, Any], events_hash: int, items_hash: int) -> None:
    """Hashes taken before shop_truth existed: benchmarks and tests depend on this exact stream."""
    events, items = generate_shop(end=END, **kwargs)
    assert int(pd.util.hash_pandas_object(events, index=False).sum()) == events_hash
    assert int(pd.util.hash_pandas_object(items, index=False).sum()) == items_hash


def test_truth_replays_the_generators_preferences(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[tuple[np.ndarray, np.ndarray]] = []
    original = synthetic._user_preferences

    def recording(rng: np.random.Generator, n_users: int, n_categories: int) -> tuple[np.ndarray, np.ndarray]:
        drawn.append(original(rng, n_users, n_categories))
        return drawn[-1]

    monkeypatch.setattr(synthetic, "_user_preferences", recording)
    _, items = generate_shop(n_users=70, n_items=50, n_categories=5, days=5, end=END, seed=4)
    (first, second) = drawn[0]
    monkeypatch.undo()
    truth = shop_truth(n_users=70, n_items=50, n_categories=5, seed=4)
    np.testing.assert_array_equal(truth.first, first)
    np.testing.assert_array_equal(truth.second, second)
    pd.testing.assert_frame_equal(truth.items, items)
    assert truth.user_ids[0] == "u00000" and len(truth.user_ids) == 70


def test_sessions_fall_in_the_truths_categories_at_the_truths_rates() -> None:
    events, items = generate_shop(n_users=1500, n_items=160, days=30, end=END, seed=2)
    truth = shop_truth(n_users=1500, n_items=160, seed=2)
    opening = events[events[schema.EVENT_TYPE] == schema.VIEW].drop_duplicates(schema.SESSION_ID)
    category = truth.item_category[pd.Index(items[schema.ITEM_ID]).get_indexer(opening[schema.ITEM_ID])]
    user = pd.Index(truth.user_ids).get_indexer(opening[schema.USER_ID])  # (n_sessions,)
    share = truth.category_share()
    for preferred in (truth.first, truth.second):
        observed = (category == preferred[user]).mean()
        assert observed == pytest.approx(share[user, preferred[user]].mean(), abs=0.02)
    top = pd.Series(category).groupby(user).agg(lambda c: c.mode().iloc[0])  # most frequent, per user
    is_first = top.to_numpy() == truth.first[top.index]
    one_category = truth.first[top.index] == truth.second[top.index]
    assert is_first.mean() > 0.7 and is_first[one_category].mean() > 0.9  # light users have few sessions


def test_item_within_is_the_view_share_inside_the_category() -> None:
    events, items = generate_shop(n_users=2000, n_items=40, n_categories=4, days=10, end=END, seed=5)
    truth = shop_truth(n_users=2000, n_items=40, n_categories=4, seed=5)
    views = events.loc[events[schema.EVENT_TYPE] == schema.VIEW, schema.ITEM_ID]
    counts = views.value_counts().reindex(items[schema.ITEM_ID], fill_value=0).to_numpy()
    share = counts / np.bincount(truth.item_category, weights=counts)[truth.item_category]
    np.testing.assert_allclose(np.bincount(truth.item_category, weights=truth.item_within), 1.0)
    assert np.abs(share - truth.item_within).max() < 0.02


def test_category_share_and_affinity_bounds() -> None:
    truth = shop_truth(n_users=200, n_items=80, seed=1)
    share = truth.category_share()
    assert share.shape == (200, 8)
    np.testing.assert_allclose(share.sum(axis=1), 1.0)
    assert (share.argmax(axis=1) == truth.first).all()
    users, items = np.repeat(np.arange(200), 80), np.tile(np.arange(80), 200)
    affinity = truth.affinity(users, items)
    assert (affinity > 0).all() and (affinity <= 1).all()
    favourite = truth.item_category[items] == truth.first[users]
    assert (affinity[favourite] == 1).all() and (affinity[~favourite] < 0.7).all()
    one = np.flatnonzero(truth.first == truth.second)[0]
    off = np.flatnonzero(truth.item_category != truth.first[one])[0]
    assert truth.affinity(np.array([one]), np.array([off]))[0] == pytest.approx(0.025 / 0.825)


def test_truth_rejects_bad_arguments_like_the_generator() -> None:
    with pytest.raises(ConfigError, match="n_items"):
        shop_truth(n_users=10, n_items=3, n_categories=4)


def test_shop_params_round_trip_and_stay_out_of_raw_reads(raw_store: ObjectStore) -> None:
    params: dict[str, Any] = {"n_users": 50, "n_items": 40, "n_categories": 8, "n_brands": 25, "seed": 3}
    params |= {"days": 9, "end": "2024-06-01"}
    uri = write_shop_params(raw_store, "shop", params)
    assert uri.endswith("raw/shop/_synthetic.json") and shop_params_key("shop") == "raw/shop/_synthetic.json"
    assert read_shop_params(raw_store, "shop") == params
    assert list_raw_files(raw_store, layout.raw_prefix("shop")) == []


def test_missing_shop_params_say_to_run_generate(raw_store: ObjectStore) -> None:
    with pytest.raises(SourceError, match=r"_synthetic\.json.*recsys generate"):
        read_shop_params(raw_store, "shop")
    raw_store.put_json(shop_params_key("shop"), {"n_users": 5})
    with pytest.raises(SourceError, match="n_items"):
        read_shop_params(raw_store, "shop")
    with pytest.raises(ConfigError, match="seed"):
        write_shop_params(raw_store, "shop", {"n_users": 5, "n_items": 5, "n_categories": 1, "n_brands": 1})
