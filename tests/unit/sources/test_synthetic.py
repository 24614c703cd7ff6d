from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from recsys_lib import schema
from recsys_lib.errors import ConfigError
from recsys_lib.sources.synthetic import generate_shop

END = datetime(2024, 6, 1, tzinfo=UTC)  # any fixed end; tests on the `shop` fixture use the `end` fixture


def test_same_arguments_give_identical_frames() -> None:
    first = generate_shop(n_users=80, n_items=60, end=END, seed=3)
    second = generate_shop(n_users=80, n_items=60, end=END, seed=3)
    pd.testing.assert_frame_equal(first[0], second[0])
    pd.testing.assert_frame_equal(first[1], second[1])


def test_a_different_seed_gives_a_different_shop() -> None:
    events_a, items_a = generate_shop(n_users=80, n_items=60, end=END, seed=3)
    events_b, items_b = generate_shop(n_users=80, n_items=60, end=END, seed=4)
    assert not events_a.equals(events_b)
    assert not items_a.equals(items_b)


def test_frames_follow_the_canonical_schema(shop: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    events, items = shop
    assert {c: str(t) for c, t in events.dtypes.items()} == schema.EVENTS_DTYPES
    assert {c: str(t) for c, t in items.dtypes.items()} == schema.ITEMS_DTYPES
    assert len(items) == 400 and items[schema.ITEM_ID].is_unique
    assert items[schema.ITEM_ID].iloc[42] == "i00042"
    assert events[schema.USER_ID].nunique() == 1000
    assert set(events[schema.ITEM_ID]) <= set(items[schema.ITEM_ID])
    assert events[[schema.USER_ID, schema.ITEM_ID, schema.EVENT_TYPE, schema.TIMESTAMP]].notna().all().all()
    assert items[schema.CATEGORY].nunique() == 8 and items[schema.BRAND].nunique() <= 25
    assert 0.9 < items[schema.AVAILABLE].mean() < 1.0
    assert (items[schema.PRICE] > 0).all()


def test_titles_name_a_product_of_their_category(shop: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    items = shop[1]
    words = items[schema.TITLE].str.split(" ").str[-1]
    assert (items[schema.TITLE].str.split(" ").str.len() == 3).all()
    assert (words.groupby(items[schema.CATEGORY]).nunique() <= 4).all()  # product words are per category


def test_timestamps_lie_in_the_window_before_end(shop: tuple[pd.DataFrame, pd.DataFrame], end: datetime) -> None:
    ts = shop[0][schema.TIMESTAMP]
    assert ts.max() < end and ts.min() >= end - timedelta(days=60)
    assert ts.is_monotonic_increasing


def test_a_naive_end_is_taken_as_utc() -> None:
    naive = generate_shop(n_users=20, n_items=20, end=END.replace(tzinfo=None), days=3)[0]
    aware = generate_shop(n_users=20, n_items=20, end=END, days=3)[0]
    pd.testing.assert_frame_equal(naive, aware)


def test_event_mix_follows_the_funnel_shares(shop: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    shares = shop[0][schema.EVENT_TYPE].value_counts(normalize=True)
    assert shares[schema.VIEW] == pytest.approx(0.7, abs=0.03)
    assert shares[schema.ADD_TO_CART] == pytest.approx(0.2, abs=0.03)
    assert shares[schema.PURCHASE] == pytest.approx(0.1, abs=0.03)


def _without_earlier(events: pd.DataFrame, later: str, earlier: str) -> int:
    """How many ``later`` events have no ``earlier`` event of the same user, item and session before them."""
    keys = [schema.USER_ID, schema.ITEM_ID, schema.SESSION_ID]
    late = events[events[schema.EVENT_TYPE] == later].reset_index()
    early = events[events[schema.EVENT_TYPE] == earlier][[*keys, schema.TIMESTAMP]]
    pairs = late.merge(early, on=keys, suffixes=("", "_before"))
    ok = pairs[pairs[f"{schema.TIMESTAMP}_before"] < pairs[schema.TIMESTAMP]]["index"].nunique()
    return len(late) - ok


def test_every_purchase_follows_a_cart_and_every_cart_a_view(shop: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    events = shop[0]
    assert _without_earlier(events, schema.PURCHASE, schema.ADD_TO_CART) == 0
    assert _without_earlier(events, schema.ADD_TO_CART, schema.VIEW) == 0


def test_quantities_and_prices_sit_on_the_right_events(shop: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    events, items = shop
    views = events[events[schema.EVENT_TYPE] == schema.VIEW]
    buys = events[events[schema.EVENT_TYPE] == schema.PURCHASE]
    assert views[schema.QUANTITY].isna().all() and views[schema.PRICE].isna().all()
    assert (events.loc[events[schema.EVENT_TYPE] != schema.VIEW, schema.QUANTITY] >= 1).all()
    list_price = buys[schema.ITEM_ID].map(items.set_index(schema.ITEM_ID)[schema.PRICE])
    np.testing.assert_array_equal(buys[schema.PRICE].to_numpy(), list_price.to_numpy())


def test_activity_varies_and_every_user_has_five_events(shop: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    per_user = shop[0].groupby(schema.USER_ID).size()
    assert per_user.min() >= 5
    assert per_user.max() > 5 * per_user.median()  # a few heavy users


def test_users_mostly_stay_in_their_preferred_categories(
    shop: tuple[pd.DataFrame, pd.DataFrame], end: datetime
) -> None:
    events, items = shop
    category = events[schema.ITEM_ID].map(items.set_index(schema.ITEM_ID)[schema.CATEGORY])
    counts = pd.crosstab(events[schema.USER_ID], category).to_numpy()  # (users, categories)
    top2 = np.sort(counts, axis=1)[:, -2:].sum(axis=1) / counts.sum(axis=1)
    assert top2.mean() > 0.85  # planted: ~80-85% in 1-2 preferred categories; uniform would give ~0.25
    early = (events[schema.TIMESTAMP] < end - timedelta(days=30)).to_numpy()
    early_counts = pd.crosstab(events[schema.USER_ID][early], category[early])
    late_counts = pd.crosstab(events[schema.USER_ID][~early], category[~early])
    users = early_counts.index.intersection(late_counts.index)
    early_top2 = np.argsort(early_counts.loc[users].to_numpy(), axis=1)[:, -2:]  # (users, 2)
    late_in_top2 = np.take_along_axis(late_counts.loc[users, early_counts.columns].to_numpy(), early_top2, axis=1)
    assert late_in_top2.sum() / late_counts.loc[users].to_numpy().sum() > 0.65  # persist: ~0.75 (0.25 if not)


def _ndcg_at_10(scores: np.ndarray, seen: np.ndarray, test: dict[int, set[int]]) -> float:
    scores = np.where(seen, -np.inf, scores)
    top = np.argsort(-scores, axis=1)[:, :10]
    discount = 1 / np.log2(np.arange(2, 12))
    values = [
        (np.isin(top[u], list(rel)) * discount).sum() / discount[: min(len(rel), 10)].sum() for u, rel in test.items()
    ]
    return float(np.mean(values))


def test_a_low_rank_model_clearly_beats_popularity_on_later_events(shop: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    events, items = shop
    user = events[schema.USER_ID].astype("category").cat.codes.to_numpy()
    item = events[schema.ITEM_ID].map({i: n for n, i in enumerate(items[schema.ITEM_ID])}).to_numpy()
    ts = events[schema.TIMESTAMP]
    train, test_rows = (ts < ts.quantile(0.8)).to_numpy(), (ts >= ts.quantile(0.9)).to_numpy()
    matrix = np.zeros((user.max() + 1, len(items)))
    np.add.at(matrix, (user[train], item[train]), 1.0)
    test: dict[int, set[int]] = {}
    for u, i in zip(user[test_rows], item[test_rows], strict=True):
        if matrix[u].any() and not matrix[u, i]:
            test.setdefault(int(u), set()).add(int(i))
    left, sing, right = np.linalg.svd(np.log1p(matrix), full_matrices=False)
    low_rank = (left[:, :16] * sing[:16]) @ right[:16]
    popularity = np.broadcast_to((matrix > 0).sum(axis=0), matrix.shape).astype(float)
    assert len(test) > 200
    assert _ndcg_at_10(low_rank, matrix > 0, test) > 1.5 * _ndcg_at_10(popularity, matrix > 0, test)


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"n_items": 3}, "n_items"), ({"days": 0}, "days"), ({"n_users": 0}, "n_users")]
)
def test_bad_sizes_are_refused(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        generate_shop(end=END, **kwargs)
