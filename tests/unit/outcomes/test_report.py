"""The outcome report on a tiny export and window whose right answer is counted by hand."""

import numpy as np
import pandas as pd
import pytest

from recsys_lib import schema
from recsys_lib.config import OutcomesConfig
from recsys_lib.outcomes.report import BETTER, NO_EXPERIMENT, NOT_SIGNIFICANT, WORSE, Window, build_report

D = "2026-01-10"
WINDOW = Window(D, window_days=7, days_observed=7)


def _recs(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    """(user, item, arm) rows; the champion is version 1, the challenger version 2."""
    frame = pd.DataFrame(rows, columns=[schema.USER_ID, schema.ITEM_ID, schema.ARM])
    frame[schema.RANK] = frame.groupby(schema.USER_ID).cumcount() + 1
    frame[schema.MODEL_NAME] = "recsys-shop"
    frame[schema.MODEL_VERSION] = np.where(frame[schema.ARM] == "champion", "1", "2")
    return frame


def _events(rows: list[tuple]) -> pd.DataFrame:
    """(user, item, type, day of January 2026, price, quantity) rows."""
    frame = pd.DataFrame(
        rows, columns=[schema.USER_ID, schema.ITEM_ID, schema.EVENT_TYPE, "day", schema.PRICE, schema.QUANTITY]
    )
    frame[schema.TIMESTAMP] = pd.to_datetime("2026-01-01", utc=True) + pd.to_timedelta(frame.pop("day") - 1, "D")
    return frame.astype({schema.QUANTITY: "Int64"})


CHAMPION_ROWS = [("a", "x", "champion"), ("a", "y", "champion"), ("b", "x", "champion"), ("b", "z", "champion")]
RECS = _recs([*CHAMPION_ROWS, ("c", "y", "challenger"), ("d", "z", "challenger")])
EVENTS = _events(
    [
        ("a", "x", "purchase", 10, 99.0, 1),  # the export's own day: outside the window
        ("a", "x", "view", 11, None, None),
        ("a", "x", "add_to_cart", 11, None, 2),
        ("a", "x", "purchase", 11, 10.0, 2),  # listed: 20 of revenue
        ("a", "w", "purchase", 13, 5.0, None),  # not listed, a second day
        ("b", "y", "view", 12, None, None),
        ("c", "z", "view", 12, None, None),
        ("c", "z", "purchase", 12, 4.0, 1),  # c's list is y: not a hit
        ("d", "z", "impression", 14, None, None),
        ("d", "z", "click", 14, None, None),
        ("d", "z", "view", 14, None, None),
        ("d", "z", "purchase", 14, 8.0, 1),  # listed
        ("e", "x", "view", 15, None, None),  # no list: unexposed
        ("e", "x", "purchase", 15, 3.0, 1),
        ("b", "x", "purchase", 18, 7.0, 1),  # day 18 is after the window (11..17)
    ]
)


def _value(report: dict, arm: str, metric: str) -> float:
    return report["arms"][arm]["metrics"][metric]["value"]


def test_metrics_per_arm_match_the_hand_count():
    report = build_report(RECS, EVENTS, WINDOW, OutcomesConfig())
    champion, challenger = report["arms"]["champion"], report["arms"]["challenger"]
    assert champion["model"] == {"name": "recsys-shop", "version": "1"}
    assert challenger["model"]["version"] == "2"
    assert (champion["exposed"], champion["purchasers"], champion["purchases"]) == (2, 1, 2)
    assert champion["revenue"] == 25.0 and challenger["revenue"] == 12.0
    expected = {
        # champion: a bought listed x; b viewed only. Challenger: c bought unlisted z, d listed z.
        "hit_rate": (1 / 2, 1 / 2),
        "conversion_rate": (1 / 2, 2 / 2),
        "add_to_cart_rate": (1 / 2, 0 / 2),
        "purchase_share": (1 / 2, 1 / 2),
        "revenue_share": (20 / 25, 8 / 12),
        "repeat_purchase_rate": (1 / 1, 0 / 2),  # a bought on days 11 and 13
    }
    for metric, (want_champion, want_challenger) in expected.items():
        assert _value(report, "champion", metric) == pytest.approx(want_champion), metric
        assert _value(report, "challenger", metric) == pytest.approx(want_challenger), metric
    assert champion["metrics"]["click_through_rate"]["value"] is None  # no champion user saw an impression
    assert _value(report, "challenger", "click_through_rate") == 1.0  # d: 1 click / 1 impression
    assert report["unexposed"] == {"users": 1, "purchasers": 1, "purchases": 1, "revenue": 3.0}
    assert report["verdict"] == NOT_SIGNIFICANT and not report["partial"]
    assert report["window"]["first_day"] == "2026-01-11" and report["window"]["last_day_observed"] == "2026-01-17"


def test_click_through_rate_is_unavailable_without_impressions_never_zero():
    report = build_report(RECS, EVENTS[EVENTS[schema.EVENT_TYPE] != "impression"], WINDOW, OutcomesConfig())
    for arm in ("champion", "challenger"):
        assert "log impressions" in report["arms"][arm]["metrics"]["click_through_rate"]["unavailable"]
    assert "click_through_rate" not in report["comparison"]["metrics"]


def test_a_window_still_landing_is_partial():
    report = build_report(RECS, EVENTS, Window(D, window_days=7, days_observed=3), OutcomesConfig())
    assert report["partial"] and report["window"]["last_day_observed"] == "2026-01-13"
    assert report["arms"]["challenger"]["exposed"] == 1  # c (day 12); d came on day 14


def test_without_a_challenger_there_is_no_comparison():
    report = build_report(RECS[RECS[schema.ARM] == "champion"], EVENTS, WINDOW, OutcomesConfig())
    assert report["verdict"] == NO_EXPERIMENT and report["comparison"] is None
    assert report["unexposed"]["users"] == 3  # c, d and e have no list now


def _experiment(hit_champion: float, hit_challenger: float, n: int = 1000, seed: int = 0) -> tuple:
    """n users per arm, each with a one-item list, who all view it and buy it with the arm's rate."""
    rng = np.random.default_rng(seed)
    users = [f"u{i}" for i in range(2 * n)]
    arms = ["champion"] * n + ["challenger"] * n
    recs = _recs([(u, "x", arm) for u, arm in zip(users, arms, strict=True)])
    draws = np.tile(rng.random(n), 2)  # the same draws in both arms: equal rates give equal outcomes
    rate = np.repeat([hit_champion, hit_challenger], n)
    buyers = [u for u, bought in zip(users, draws < rate, strict=True) if bought]
    events = _events(
        [(u, "x", "view", 12, None, None) for u in users] + [(u, "x", "purchase", 12, 1.0, 1) for u in buyers]
    )
    return recs, events


@pytest.mark.parametrize(
    ("rates", "verdict"), [((0.10, 0.20), BETTER), ((0.20, 0.10), WORSE), ((0.15, 0.15), NOT_SIGNIFICANT)]
)
def test_the_verdict_follows_the_primary_metric_after_correction(rates, verdict):
    recs, events = _experiment(*rates)
    report = build_report(recs, events, WINDOW, OutcomesConfig())
    assert report["verdict"] == verdict
    hit = report["comparison"]["metrics"]["hit_rate"]
    assert hit["p_adjusted"] >= hit["p_value"]
    assert hit["ci_low"] < hit["value"] < hit["ci_high"]
    assert report["comparison"]["correction"].startswith("Holm")
