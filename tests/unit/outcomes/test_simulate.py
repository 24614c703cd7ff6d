"""The responsive shop: shoppers see the lists, click and buy what they truly like."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from recsys_lib import schema
from recsys_lib.errors import ConfigError
from recsys_lib.outcomes.simulate import simulate_days
from recsys_lib.sources.synthetic import ShopTruth, shop_truth

K = 5
DAYS = [date(2024, 6, 1) + timedelta(days=d) for d in range(3)]


@pytest.fixture(scope="module")
def truth() -> ShopTruth:
    return shop_truth(n_users=300, n_items=120, seed=1)


def _lists(truth: ShopTruth, pick: str) -> pd.DataFrame:
    """K items per user: the most popular of the favourite category (``favourite``), or of a
    category the user does not prefer (``off``)."""
    order = np.lexsort((-truth.item_within, truth.item_category))
    top = {c: order[truth.item_category[order] == c][:K] for c in range(truth.n_categories)}
    category = truth.first
    if pick == "off":
        category = np.array(
            [
                next(c for c in range(truth.n_categories) if c not in (f, s))
                for f, s in zip(truth.first, truth.second, strict=True)
            ]
        )
    return pd.DataFrame(
        {
            schema.USER_ID: np.repeat(truth.user_ids, K),
            schema.ITEM_ID: truth.items[schema.ITEM_ID].to_numpy()[np.concatenate([top[c] for c in category])],
            schema.RANK: np.tile(np.arange(1, K + 1), len(truth.user_ids)),
        }
    )


@pytest.fixture(scope="module")
def favourite(truth: ShopTruth) -> pd.DataFrame:
    return _lists(truth, "favourite")


@pytest.fixture(scope="module")
def events(truth: ShopTruth, favourite: pd.DataFrame) -> pd.DataFrame:
    return simulate_days(truth, favourite, DAYS, seed=3)


def _of(events: pd.DataFrame, event_type: str) -> pd.DataFrame:
    return events[events[schema.EVENT_TYPE] == event_type]


def test_same_arguments_give_an_identical_frame(
    truth: ShopTruth, favourite: pd.DataFrame, events: pd.DataFrame
) -> None:
    pd.testing.assert_frame_equal(simulate_days(truth, favourite, DAYS, seed=3), events)
    assert not simulate_days(truth, favourite, DAYS, seed=4).equals(events)
    one_day = simulate_days(truth, favourite, DAYS[1:2], seed=3)  # a day depends only on the seed and itself
    pd.testing.assert_frame_equal(one_day, events[events[schema.TIMESTAMP].dt.date == DAYS[1]].reset_index(drop=True))


def test_events_are_canonical_sorted_and_inside_the_days(events: pd.DataFrame) -> None:
    assert {c: str(t) for c, t in events.dtypes.items()} == schema.EVENTS_DTYPES
    assert events[schema.TIMESTAMP].is_monotonic_increasing
    assert events[schema.TIMESTAMP].min() >= datetime(2024, 6, 1, tzinfo=UTC)
    assert events[schema.TIMESTAMP].max() < datetime(2024, 6, 4, tzinfo=UTC)
    assert set(events[schema.EVENT_TYPE]) == set(schema.EVENT_TYPES)
    sessions = events.groupby(schema.SESSION_ID)
    assert (sessions[schema.USER_ID].nunique() == 1).all()
    assert (sessions[schema.TIMESTAMP].agg(lambda t: t.dt.date.nunique()) == 1).all()


def test_impressions_show_the_recommended_items_at_the_placement(favourite: pd.DataFrame, events: pd.DataFrame) -> None:
    shown = _of(events, schema.IMPRESSION)
    recommended = set(zip(favourite[schema.USER_ID], favourite[schema.ITEM_ID], strict=True))
    assert set(zip(shown[schema.USER_ID], shown[schema.ITEM_ID], strict=True)) <= recommended
    assert (shown.groupby(schema.SESSION_ID).size() == K).all()  # the whole list, once per session
    assert (events[schema.PLACEMENT].notna() == events[schema.EVENT_TYPE].isin(schema.OUTCOME_EVENT_TYPES)).all()
    assert set(events[schema.PLACEMENT].dropna()) == {"home"}
    first = events.groupby(schema.SESSION_ID)[schema.EVENT_TYPE].first()
    assert (first[first.index.isin(shown[schema.SESSION_ID])] == schema.IMPRESSION).all()


def test_clicks_are_on_shown_items_and_followed_by_a_view(events: pd.DataFrame) -> None:
    keys = [schema.SESSION_ID, schema.ITEM_ID]
    rows = events.assign(row=np.arange(len(events)))
    clicks, views = _of(rows, schema.CLICK), _of(rows, schema.VIEW)
    assert len(clicks) > 0
    assert clicks.set_index(keys).index.isin(_of(rows, schema.IMPRESSION).set_index(keys).index).all()
    paired = clicks.merge(views, on=keys, suffixes=("_click", "_view"))
    followed = paired[paired["row_view"] > paired["row_click"]]
    assert followed["row_click"].nunique() == len(clicks)


def test_purchases_follow_a_cart_of_the_same_item_in_the_session(truth: ShopTruth, events: pd.DataFrame) -> None:
    keys = [schema.USER_ID, schema.SESSION_ID, schema.ITEM_ID]
    buys, carts = _of(events, schema.PURCHASE), _of(events, schema.ADD_TO_CART)
    cart_time = carts.groupby(keys)[schema.TIMESTAMP].min()
    bought = buys.set_index(keys)
    assert bought.index.isin(cart_time.index).all()
    assert (cart_time.loc[bought.index].to_numpy() <= bought[schema.TIMESTAMP].to_numpy()).all()
    price = truth.items.set_index(schema.ITEM_ID)[schema.PRICE]
    np.testing.assert_allclose(buys[schema.PRICE].to_numpy(), price.loc[buys[schema.ITEM_ID]].to_numpy())
    assert (buys[schema.QUANTITY] >= 1).all() and events[schema.QUANTITY].notna().sum() == len(buys) + len(carts)


def test_new_visitors_browse_and_are_never_shown_lists(truth: ShopTruth, events: pd.DataFrame) -> None:
    new = events[events[schema.USER_ID].str.startswith("new-")]
    assert new[schema.USER_ID].nunique() == 50 * len(DAYS)
    assert not new[schema.EVENT_TYPE].isin(schema.OUTCOME_EVENT_TYPES).any()
    assert set(events[schema.USER_ID]) - set(new[schema.USER_ID]) <= set(truth.user_ids)


def test_unknown_users_only_browse(truth: ShopTruth, favourite: pd.DataFrame) -> None:
    pseudonymous = favourite.assign(**{schema.USER_ID: "p-" + favourite[schema.USER_ID]})
    events = simulate_days(truth, pseudonymous, DAYS[:1], seed=3)
    assert not events[schema.EVENT_TYPE].isin(schema.OUTCOME_EVENT_TYPES).any() and len(events) > 0


def _recommended_buyers(lists: pd.DataFrame, events: pd.DataFrame) -> float:
    """Share of shown users who bought an item of their list."""
    bought = _of(events, schema.PURCHASE).merge(lists, on=[schema.USER_ID, schema.ITEM_ID])
    return bought[schema.USER_ID].nunique() / _of(events, schema.IMPRESSION)[schema.USER_ID].nunique()


def test_lists_the_shoppers_like_sell_more(truth: ShopTruth, favourite: pd.DataFrame, events: pd.DataFrame) -> None:
    off = _lists(truth, "off")
    off_events = simulate_days(truth, off, DAYS, seed=3)
    assert _recommended_buyers(favourite, events) > 0.25
    assert _recommended_buyers(favourite, events) > 5 * _recommended_buyers(off, off_events)
    assert len(_of(events, schema.CLICK)) > 10 * len(_of(off_events, schema.CLICK))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"visit_rate": 1.5}, "visit_rate"),
        ({"click_rate": 0.0}, "click_rate"),
        ({"purchase_rate": -1.0}, "purchase_rate"),
        ({"new_visitors_per_day": -1}, "new_visitors_per_day"),
        ({"seed": -2}, "seed"),
        ({"placement": ""}, "placement"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(
    truth: ShopTruth, favourite: pd.DataFrame, kwargs: dict, name: str
) -> None:
    with pytest.raises(ConfigError, match=f"simulate_days: {name}"):
        simulate_days(truth, favourite, DAYS, **kwargs)


def test_bad_inputs_raise(truth: ShopTruth, favourite: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="rank"):
        simulate_days(truth, favourite.drop(columns=schema.RANK), DAYS)
    with pytest.raises(ConfigError, match="distinct"):
        simulate_days(truth, favourite, [DAYS[0], DAYS[0]])
    with pytest.raises(ConfigError, match="not in the shop's catalogue"):
        simulate_days(truth, favourite.assign(**{schema.ITEM_ID: "x1"}), DAYS)
    assert simulate_days(truth, favourite, []).empty
