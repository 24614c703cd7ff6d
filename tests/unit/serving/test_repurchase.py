"""Buy-again: the repurchase score on purchases whose answer is computed by hand, and the repeat
policies through the shared scorer."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from recsys_lib import schema
from recsys_lib.config import FeaturesConfig, ModelConfig, RecommendConfig, TrainConfig
from recsys_lib.features import build_features
from recsys_lib.models import create_model
from recsys_lib.serving import ModelBundle
from recsys_lib.serving.live import LiveScorer
from recsys_lib.serving.repurchase import buy_again, buy_again_scores, item_intervals, reorders
from recsys_lib.serving.rules import compile_rules

DAY0 = pd.Timestamp("2026-01-01", tz="UTC")


def _day(d: int) -> pd.Timestamp:
    return DAY0 + pd.Timedelta(days=d)


PURCHASES = pd.DataFrame(
    {
        schema.USER_IDX: [0, 1, 2, 0],
        schema.ITEM_IDX: [0, 0, 1, 1],
        "purchases": [3, 2, 1, 1],
        "days": [3, 2, 1, 1],
        "first": [_day(0), _day(0), _day(40), _day(49)],
        "last": [_day(20), _day(30), _day(40), _day(49)],
    }
)


def test_intervals_are_the_median_gap_of_repeat_buyers_with_a_fallback() -> None:
    # item 0: user 0 bought on 3 days over 20 (gap 10), user 1 on 2 days over 30 (gap 30): median 20;
    # item 1 has no repeat buyer: the median over all items' gaps, 20; item 2 likewise
    assert item_intervals(PURCHASES, 3).tolist() == [20.0, 20.0, 20.0]


def test_the_score_peaks_one_interval_after_the_last_purchase() -> None:
    scores = buy_again_scores(PURCHASES, 3, _day(50), timing=1.0)
    # u0 i0: age 30, log(1 + 3) * (21 / 31); u1 i0: age 20, log(3) * 1; u2 i1: age 10, log(2) * 11 / 21;
    # u0 i1: age 1 (just bought), log(2) * 2 / 21
    expected = [math.log(4) * 21 / 31, math.log(3), math.log(2) * 11 / 21, math.log(2) * 2 / 21]
    assert scores.tolist() == pytest.approx(expected)


def test_buy_again_lists_each_buyers_best_eligible_reorders() -> None:
    top = buy_again(PURCHASES, 3, _day(50), np.array([True, True, True]), k=1, timing=1.0)
    assert top[[schema.USER_IDX, schema.RANK, schema.ITEM_IDX]].values.tolist() == [[0, 1, 0], [1, 1, 0], [2, 1, 1]]
    only_item_1 = buy_again(PURCHASES, 3, _day(50), np.array([False, True, True]), k=5, timing=1.0)
    assert only_item_1[schema.ITEM_IDX].tolist() == [1, 1] and only_item_1[schema.USER_IDX].tolist() == [0, 2]


def _shop():
    """Six users; u0 bought the most popular item "a" twice, and viewed "b"."""
    rows = [("u0", "a", "purchase", 1), ("u0", "a", "purchase", 5), ("u0", "b", "view", 6)]
    rows += [(f"u{u}", item, "view", day) for u in range(1, 6) for item, day in (("a", 2), ("b", 3), ("c", 4))]
    rows += [(f"u{u}", "a", "purchase", 7) for u in range(1, 6)]
    events = pd.DataFrame(rows, columns=[schema.USER_ID, schema.ITEM_ID, schema.EVENT_TYPE, "day"])
    events[schema.TIMESTAMP] = DAY0 + pd.to_timedelta(events.pop("day"), unit="D")
    items = pd.DataFrame(
        {schema.ITEM_ID: list("abcd"), schema.CATEGORY: ["tea", "tea", "cups", "cups"], schema.PRICE: 1.0}
    )
    features = build_features(events, items, FeaturesConfig(validation_fraction=0.0, test_fraction=0.05))
    model = create_model(ModelConfig(name="popularity"), features.n_users, features.n_items)
    return features, ModelBundle.from_training(model.fit(features, TrainConfig()), features)


def test_features_keep_every_purchased_pair() -> None:
    features, _ = _shop()
    u0 = features.purchases[features.purchases[schema.USER_IDX] == 0]
    assert u0[[schema.ITEM_IDX, "purchases", "days"]].values.tolist() == [[0, 2, 2]]


@pytest.mark.parametrize(
    ("settings", "listed"),
    [
        (RecommendConfig(), ["c", "d"]),  # exclude: "a" (bought) and "b" (viewed) never come back
        (RecommendConfig(repeat_purchases="allow"), ["a", "c", "d"]),  # the bought "a" may; "b" still not
        (RecommendConfig(repeat_purchases="exclude", repeat_purchases_by_category={"tea": "allow"}), ["a", "c", "d"]),
        (RecommendConfig(repeat_purchases="allow", repeat_purchases_by_category={"tea": "separate"}), ["c", "d"]),
    ],
)
def test_repeat_policies_decide_what_a_buyer_sees_again(settings: RecommendConfig, listed: list[str]) -> None:
    features, bundle = _shop()
    rules = compile_rules(settings, features.items)
    scorer = bundle.scorer(features, rules=rules)
    items, _ = scorer.topk(np.array([0]), 3)
    got = [str(features.item_ids[i]) for i in items[0] if i >= 0]
    assert got == listed
    kinds = scorer.reason_kinds(np.array([0]), items, scorer.reasons(np.array([0]), items))
    assert (kinds[0][: len(got)] == np.array(["buy_again" if i == "a" else "popular" for i in got])).all()
    live = LiveScorer(scorer).recommend("u0", [], 3)  # the live service lists the same
    assert live.item_ids == got and live.reason_kinds == list(kinds[0][: len(got)])


def test_without_timing_purchase_days_rank_and_recency_breaks_ties() -> None:
    # timing 0: u0 has i0 (3 days) over i1 (1 day); log(1 + days) alone
    assert buy_again_scores(PURCHASES, 3, _day(50), timing=0.0).tolist() == pytest.approx(
        [math.log(4), math.log(3), math.log(2), math.log(2)]
    )
    two = PURCHASES.assign(days=1)  # all tie on days: the more recent last purchase first
    top = buy_again(two[two[schema.USER_IDX] == 0], 3, _day(50), np.ones(3, bool), k=2, timing=0.0)
    assert top[schema.ITEM_IDX].tolist() == [1, 0]  # bought on day 49, then day 20


def test_the_live_scorer_lists_the_reorders_the_export_publishes() -> None:
    features, bundle = _shop()  # u0 bought "a" (tea) on two days, u1-u5 once
    settings = RecommendConfig(repeat_purchases="allow", repeat_purchases_by_category={"tea": "separate"})
    rules = compile_rules(settings, features.items)
    listed = reorders(features, rules)  # the rows the export's buy_again table holds
    assert listed is not None
    assert listed[[schema.USER_IDX, schema.RANK, schema.ITEM_IDX]].values.tolist() == [[u, 1, 0] for u in range(6)]
    live = LiveScorer(bundle.scorer(features, rules=rules), listed)
    got = live.buy_again("u0", 5)
    assert got is not None and got.item_ids == ["a"] and got.source == "purchases"
    assert got.scores == pytest.approx([listed[schema.SCORE][0]]) and got.reason_kinds == ["buy_again"]
    assert live.buy_again("u3", 5).item_ids == ["a"] and live.buy_again("nobody", 5).item_ids == []  # type: ignore[union-attr]
    # no item separated: no list to publish or serve
    assert reorders(features, compile_rules(RecommendConfig(), features.items)) is None
    assert LiveScorer(bundle.scorer(features)).buy_again("u0", 5) is None


def test_a_share_of_the_list_goes_to_the_likeliest_reorders_in_the_export_and_live_alike() -> None:
    """u0 re-buys "d" and "c", which few others touch; "a" and "b" are everyone's."""
    rows = [("u0", "d", "purchase", 1), ("u0", "d", "purchase", 4), ("u0", "c", "purchase", 2)]
    rows += [(f"u{u}", item, "purchase", 3) for u in range(1, 6) for item in ("a", "b")]
    rows += [(f"u{u}", "c", "view", 5) for u in range(1, 4)]
    events = pd.DataFrame(rows, columns=[schema.USER_ID, schema.ITEM_ID, schema.EVENT_TYPE, "day"])
    events[schema.TIMESTAMP] = DAY0 + pd.to_timedelta(events.pop("day"), unit="D")
    items = pd.DataFrame({schema.ITEM_ID: list("abcd"), schema.CATEGORY: "tea", schema.PRICE: 1.0})
    features = build_features(events, items, FeaturesConfig(validation_fraction=0.0, test_fraction=0.05))
    bundle = ModelBundle.from_training(
        create_model(ModelConfig(name="popularity"), features.n_users, features.n_items).fit(features, TrainConfig()),
        features,
    )
    u0 = int(np.flatnonzero(features.user_ids == "u0")[0])

    def listed(share: float) -> tuple[list[str], list[str]]:
        settings = RecommendConfig(repeat_purchases="allow", buy_again_share=share)
        scorer = bundle.scorer(features, rules=compile_rules(settings, features.items))
        top, _ = scorer.topk(np.array([u0]), 4)
        got = [str(features.item_ids[i]) for i in top[0] if i >= 0]
        kinds = scorer.reason_kinds(np.array([u0]), top, scorer.reasons(np.array([u0]), top))[0][: len(got)]
        live = LiveScorer(scorer).recommend("u0", [], 4)  # the live service lists the same
        assert live.item_ids == got and live.reason_kinds == list(kinds)
        return got, list(kinds)

    assert listed(0.0)[0][:2] == ["a", "b"]  # re-orders compete on popularity: behind everyone's "a" and "b"
    got, kinds = listed(1.0)  # re-orders first, by purchase days: "d" (2 days), then "c" (1)
    assert got == ["d", "c", "a", "b"] and kinds == ["buy_again", "buy_again", "popular", "popular"]
    assert listed(0.5)[0] == ["d", "a", "c", "b"]  # places 1 and 3
