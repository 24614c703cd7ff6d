"""Shopper profiles on a hand-made shop whose every value is worked out by hand below."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_lib import schema
from recsys_lib.features.profiles import _top_shares, quintile_scores, rfm_segments, user_profiles

AS_OF = pd.Timestamp("2024-06-30 12:00", tz="UTC")

#: Catalogue prices 10..50: tertiles 23.33 and 36.67 (numpy's linear quantiles).
ITEMS = [
    ("i1", "shoes", "acme", 10.0),
    ("i2", "shoes", "zeta", 20.0),
    ("i3", "bags", "acme", 30.0),
    ("i4", "hats", "beta", 40.0),
    ("i5", "socks", None, 50.0),
    ("i6", None, None, None),
]

#: (user, item, event type, time, quantity, price paid). Five buyers (so quintile scores are plain
#: ranks), a browser (fay) and a shopper who was only shown lists (gus).
EVENTS = [
    # ann: purchase days 06-01, 06-10, 06-20, 06-30 (gaps 9, 10, 10), last 2.5 h before AS_OF: recency 0.
    # Money 2 x 100 + 1 x 100 (quantity null) + 160 + 40 (no price paid: i4's catalogue price) = 500.
    ("ann", "i3", "purchase", "2024-06-01 12:00", 2, 100.0),
    ("ann", "i3", "purchase", "2024-06-10 12:00", None, 100.0),
    ("ann", "i1", "purchase", "2024-06-20 12:00", 1, 160.0),
    ("ann", "i4", "purchase", "2024-06-30 09:30", 1, None),
    ("ann", "i1", "view", "2024-06-01 11:00", None, None),
    ("ann", "i1", "view", "2024-06-02 11:00", None, None),
    ("ann", "i2", "view", "2024-06-03 11:00", None, None),
    ("ann", "i5", "view", "2024-06-04 11:00", None, None),
    ("ann", "i6", "view", "2024-06-05 11:00", None, None),
    # shown and clicked hats often: would top her categories if impressions or clicks counted
    *[("ann", "i4", "impression", f"2024-06-0{d} 10:00", None, None) for d in range(1, 6)],
    *[("ann", "i4", "click", f"2024-06-0{d} 10:01", None, None) for d in range(1, 4)],
    # bob: 5 purchase days 5 days apart or so (gaps 4, 5, 5, 5: median 5), last 06-20: recency 10 = 2 x 5.
    *[("bob", "i2", "purchase", f"2024-06-{d:02d} 12:00", 1, 40.0) for d in (1, 5, 10, 15, 20)],
    # cat: purchase days 03-01, 03-11, 04-01 (gaps 10, 21: median 15.5), recency 90 > 31; money 300.
    *[("cat", "i4", "purchase", f"2024-{md} 12:00", 1, 100.0) for md in ("03-01", "03-11", "04-01")],
    # dan: one purchase 2 days ago, money 100.
    ("dan", "i5", "purchase", "2024-06-28 12:00", 1, 100.0),
    # eve: two purchases on one day (one day of frequency), 121 days ago; an unknown item without
    # a price counts 0: money 20.
    ("eve", "i1", "purchase", "2024-03-01 09:00", 1, 20.0),
    ("eve", "x9", "purchase", "2024-03-01 12:00", 1, None),
    # fay: views and a cart, never bought.
    ("fay", "i3", "view", "2024-06-10 12:00", None, None),
    ("fay", "i3", "view", "2024-06-11 12:00", None, None),
    ("fay", "i2", "view", "2024-06-12 12:00", None, None),
    ("fay", "i3", "add_to_cart", "2024-06-12 12:05", 1, None),
    ("fay", "i1", "impression", "2024-06-12 12:06", None, None),
    # gus: only shown a list and clicked it.
    ("gus", "i1", "impression", "2024-06-15 12:00", None, None),
    ("gus", "i1", "click", "2024-06-15 12:01", None, None),
]


def shop() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(events, items): the canonical tables of :data:`EVENTS` and :data:`ITEMS`."""
    users, item_ids, kinds, times, quantities, prices = zip(*EVENTS, strict=True)
    events = pd.DataFrame(
        {
            schema.USER_ID: users,
            schema.ITEM_ID: item_ids,
            schema.EVENT_TYPE: kinds,
            schema.TIMESTAMP: pd.to_datetime(list(times), utc=True),
            schema.QUANTITY: pd.array(quantities, dtype="Int64"),
            schema.PRICE: pd.array(prices, dtype="float64"),
        }
    )
    ids, categories, brands, item_prices = zip(*ITEMS, strict=True)
    items = pd.DataFrame(
        {schema.ITEM_ID: ids, schema.CATEGORY: categories, schema.BRAND: brands, schema.PRICE: item_prices}
    )
    return schema.conform_events(events), schema.conform_items(items)


@pytest.fixture(scope="module")
def profiles() -> pd.DataFrame:
    events, items = shop()
    return user_profiles(events, items, as_of=AS_OF).set_index(schema.USER_ID)


def test_one_row_per_user_with_events_and_the_export_columns(profiles: pd.DataFrame) -> None:
    assert list(profiles.index) == ["ann", "bob", "cat", "dan", "eve", "fay", "gus"]
    assert [schema.USER_ID, *profiles.columns] == list(schema.USER_PROFILES_DTYPES)
    assert schema.export_columns("user_profiles") == schema.USER_PROFILES_DTYPES


def test_top_categories_and_brands_count_views_carts_and_purchases_only(profiles: pd.DataFrame) -> None:
    ann = profiles.loc["ann"]
    # shoes: 1 purchase + 3 views, bags: 2 purchases, hats 1 and socks 1 (tie: by name); i6 has none
    assert list(ann[schema.TOP_CATEGORIES]) == ["shoes", "bags", "hats"]
    assert list(ann[schema.CATEGORY_SHARES]) == pytest.approx([4 / 8, 2 / 8, 1 / 8])
    # acme 5 of the 7 events with a brand; beta and zeta 1 each (tie: by name)
    assert list(ann[schema.TOP_BRANDS]) == ["acme", "beta", "zeta"]
    assert list(ann[schema.BRAND_SHARES]) == pytest.approx([5 / 7, 1 / 7, 1 / 7])
    fay = profiles.loc["fay"]
    assert list(fay[schema.TOP_CATEGORIES]) == ["bags", "shoes"]  # the cart counts, the impression not
    assert list(fay[schema.CATEGORY_SHARES]) == pytest.approx([0.75, 0.25])
    assert list(profiles.loc["dan", schema.TOP_BRANDS]) == []  # socks have no brand
    assert list(profiles.loc["gus", schema.TOP_CATEGORIES]) == [] == list(profiles.loc["gus", schema.BRAND_SHARES])


def test_price_band_is_the_median_item_price_against_the_catalogue_tertiles(profiles: pd.DataFrame) -> None:
    # ann: items 10, 20, 30, 40, 50 (i6 has no price) -> 30; fay: 20, 30 -> 25; eve: i1 only (x9 unknown)
    expected = {"ann": "mid", "bob": "low", "cat": "high", "dan": "high", "eve": "low", "fay": "mid"}
    assert profiles[schema.PRICE_BAND].dropna().to_dict() == expected
    assert pd.isna(profiles.loc["gus", schema.PRICE_BAND])


def test_recency_frequency_and_monetary(profiles: pd.DataFrame) -> None:
    assert profiles[schema.RECENCY_DAYS].dropna().to_dict() == {"ann": 0, "bob": 10, "cat": 90, "dan": 2, "eve": 121}
    assert profiles[schema.RECENCY_DAYS][["fay", "gus"]].isna().all()
    frequency = {"ann": 4, "bob": 5, "cat": 3, "dan": 1, "eve": 1, "fay": 0, "gus": 0}  # eve: 2 purchases, 1 day
    assert profiles[schema.FREQUENCY].to_dict() == frequency
    assert profiles[schema.MONETARY].to_dict() == pytest.approx(
        {"ann": 500.0, "bob": 200.0, "cat": 300.0, "dan": 100.0, "eve": 20.0, "fay": 0.0, "gus": 0.0}
    )


def test_rfm_scores_and_segments(profiles: pd.DataFrame) -> None:
    # R by recency 121 < 90 < 10 < 2 < 0 days; F: dan and eve tie at 1 day (both 1), then 3, 4, 5;
    # M: 20 < 100 < 200 < 300 < 500
    assert profiles[schema.RFM_SCORE].dropna().to_dict() == {
        "ann": "545",
        "bob": "353",
        "cat": "234",
        "dan": "412",
        "eve": "111",
    }
    assert profiles[schema.RFM_SEGMENT].to_dict() == {
        "ann": "champions",
        "bob": "loyal",  # F 5, R 3
        "cat": "at_risk",  # R 2, F 3
        "dan": "new",  # R 4, one purchase day
        "eve": "hibernating",
        "fay": "browsers",
        "gus": "browsers",
    }


def test_churn_risk_rule(profiles: pd.DataFrame) -> None:
    # cat: 90 days > 2 x 15.5; eve: one purchase day, 121 > 60 days; bob: 10 days is exactly 2 x 5, not more
    assert sorted(profiles.index[profiles[schema.CHURN_RISK]]) == ["cat", "eve"]
    assert profiles[schema.CHURN_RISK].dtype == bool


def test_the_inputs_are_not_changed_and_as_of_before_a_purchase_is_refused() -> None:
    events, items = shop()
    before = events.copy()
    user_profiles(events, items, as_of=AS_OF)
    pd.testing.assert_frame_equal(events, before)
    with pytest.raises(ValueError, match=r"as_of .* is before the newest purchase"):
        user_profiles(events, items, as_of=pd.Timestamp("2024-06-30 09:00", tz="UTC"))


def test_a_catalogue_without_prices_gives_no_price_band() -> None:
    events, items = shop()
    out = user_profiles(events, items.assign(**{schema.PRICE: np.nan}), as_of=AS_OF)
    assert out[schema.PRICE_BAND].isna().all()
    assert out[schema.MONETARY].tolist() == pytest.approx([460.0, 200.0, 300.0, 100.0, 20.0, 0.0, 0.0])  # ann's i4: 0


def test_quintile_scores_share_the_lowest_score_on_ties() -> None:
    assert quintile_scores(np.array([5.0, 1.0, 3.0, 2.0, 4.0])).tolist() == [5, 1, 3, 2, 4]
    assert quintile_scores(np.array([1.0] * 8 + [2.0, 3.0])).tolist() == [1] * 8 + [5, 5]  # rank 9, 10 of 10
    assert quintile_scores(np.array([])).tolist() == []


def test_every_buyer_gets_a_segment_and_the_rest_are_potential() -> None:
    # five buyers 3 days ago... 7 days ago: R 5..1; all one purchase day of 10 (F 1, M 1)
    recency = np.array([3.0, 4.0, 5.0, 6.0, 7.0, np.nan])
    score, segment = rfm_segments(recency, np.array([1, 1, 1, 1, 1, 0]), np.array([10.0] * 5 + [0.0]))
    assert score.tolist()[:5] == ["511", "411", "311", "211", "111"] and pd.isna(score.iloc[5])
    assert segment.tolist() == ["new", "new", "potential", "hibernating", "hibernating", "browsers"]


def test_top_shares_of_millions_of_users_build_one_list_column() -> None:
    """Found at 1M users x 3 categories: pyarrow turns millions of numpy strings into a chunked
    array, which a list column cannot take; the names are taken from the few labels instead."""
    n_users = 1_200_000
    codes = np.repeat(np.arange(n_users), 3)
    values = np.tile(np.array([0, 1, 2]), n_users)
    names, shares = _top_shares(codes, values, np.array(["a", "b", "c"]), n_users)
    assert len(names) == n_users and names.iloc[-1] == ["a", "b", "c"]
    assert shares.iloc[0] == pytest.approx([1 / 3] * 3)
