"""The outcome report of one export: what each arm's users did in the days after it.

An export dated D gave each user a list (``user_topk`` rows, each naming its arm). The events of
the window (D, D + ``outcomes.window_days``] say what happened next. A user counts for an arm when
they have a list in it and came to the shop in the window (any event: they could see the list),
the **exposed** users; users who came but have no list are counted apart (``unexposed``).

Metrics per arm (the unit is the user, see :mod:`.stats`):

=====================  ==============================================================  ==========
metric                 definition                                                      kind
=====================  ==============================================================  ==========
``hit_rate``           exposed users who bought an item of their list / exposed users  proportion
``conversion_rate``    exposed users with a view who bought anything / those with a    proportion
                       view
``add_to_cart_rate``   exposed users with a view who added to cart / those with a view proportion
``purchase_share``     purchases of listed items / all purchases (exposed users)       ratio
``revenue_share``      revenue (price x quantity) of listed items / all revenue        ratio
``click_through_rate`` clicks on listed items / impressions of listed items            ratio
``repeat_purchase``    purchasers who bought on two or more days / purchasers          proportion
=====================  ==============================================================  ==========

A metric whose events were never logged is ``unavailable`` with the reason (no impressions: no
click-through rate), never 0. With two arms every available metric is compared (challenger minus
champion), p-values adjusted with Holm's method, and the verdict is the primary metric's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_args

import numpy as np
import pandas as pd

from recsys_lib import schema
from recsys_lib.config import OutcomeMetric, OutcomesConfig
from recsys_lib.outcomes.arms import ARMS, CHALLENGER, CHAMPION
from recsys_lib.outcomes.stats import Difference, Estimate, difference, holm, proportion, ratio

METRICS: tuple[str, ...] = get_args(OutcomeMetric)  # in report order
TEST = (
    "two-sided z-test on the difference (challenger - champion) with unpooled standard errors; "
    "proportions: Wald variance (arm intervals: Wilson score); ratios of sums over users: delta method"
)
CORRECTION = "Holm-Bonferroni over the metrics compared"
BETTER, WORSE, NOT_SIGNIFICANT, NO_EXPERIMENT = (
    "challenger_better",
    "challenger_worse",
    "not_significant",
    "no_experiment",
)

_USER_COLUMNS = (
    "viewed",
    "carted",
    "purchases",
    "listed_purchases",
    "revenue",
    "listed_revenue",
    "listed_impressions",
    "listed_clicks",
    "purchase_days",
)


@dataclass(frozen=True)
class Window:
    """The report's window: events in (export_dt, export_dt + window_days], of which
    ``days_observed`` (counted from the export date) had landed when the report was made."""

    export_dt: str
    window_days: int
    days_observed: int

    @property
    def complete(self) -> bool:
        """Whether every day of the window had landed: only a complete report counts towards online promotion."""
        return self.days_observed >= self.window_days

    @property
    def start(self) -> pd.Timestamp:
        """First instant inside the window: midnight after the export date (UTC)."""
        return pd.Timestamp(self.export_dt, tz="UTC") + pd.Timedelta(days=1)

    @property
    def end(self) -> pd.Timestamp:
        """First instant after the observed part of the window."""
        return self.start + pd.Timedelta(days=min(self.days_observed, self.window_days))

    def to_dict(self) -> dict[str, Any]:
        """The window as the report's JSON: export date, first and last observed day
        (``YYYY-MM-DD``, UTC), days expected and observed, and whether it is complete."""
        last = (self.end - pd.Timedelta(days=1)).date().isoformat()
        return {
            "export_dt": self.export_dt,
            "first_day": self.start.date().isoformat(),
            "last_day_observed": last,
            "window_days": self.window_days,
            "days_observed": self.days_observed,
            "complete": self.complete,
        }


def user_outcomes(recommendations: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """One row per user who had an event: what they did, and what of it touched their list.

    ``recommendations``: export rows (``user_id``, ``item_id``); ``events``: canonical events of
    the window. Columns of :data:`_USER_COLUMNS` (counts; revenue in the events' currency), indexed
    by user id. Revenue is price x quantity (quantity 1 when missing; purchases without a price add
    no revenue).
    """
    listed = recommendations[[schema.USER_ID, schema.ITEM_ID]].drop_duplicates().assign(_listed=True)
    frame = events[[schema.USER_ID, schema.ITEM_ID, schema.EVENT_TYPE, schema.TIMESTAMP]].copy()
    frame = frame.merge(listed, on=[schema.USER_ID, schema.ITEM_ID], how="left")  # keeps the events' order
    is_listed = frame["_listed"].notna().to_numpy()
    kind = frame[schema.EVENT_TYPE].to_numpy(object)
    bought = kind == schema.PURCHASE
    quantity = events[schema.QUANTITY] if schema.QUANTITY in events else pd.Series(1, index=events.index)
    price = events[schema.PRICE] if schema.PRICE in events else pd.Series(np.nan, index=events.index)
    value = (price.astype("float64").fillna(0.0) * quantity.astype("float64").fillna(1.0)).to_numpy() * bought
    day = frame[schema.TIMESTAMP].dt.floor("D").to_numpy()
    per_event = pd.DataFrame(
        {
            schema.USER_ID: frame[schema.USER_ID].to_numpy(),
            "viewed": kind == schema.VIEW,
            "carted": kind == schema.ADD_TO_CART,
            "purchases": bought,
            "listed_purchases": bought & is_listed,
            "revenue": value,
            "listed_revenue": value * is_listed,
            "listed_impressions": (kind == schema.IMPRESSION) & is_listed,
            "listed_clicks": (kind == schema.CLICK) & is_listed,
        }
    )
    out = per_event.groupby(schema.USER_ID, sort=True).sum()
    days = pd.Series(day[bought]).groupby(frame[schema.USER_ID].to_numpy()[bought]).nunique()
    out["purchase_days"] = days.reindex(out.index, fill_value=0).astype(np.int64)
    return out[list(_USER_COLUMNS)]


def _metric(name: str, users: pd.DataFrame, confidence: float, impressions_logged: bool) -> Estimate | str:
    """One arm's estimate of metric ``name`` from its exposed users' rows, or why it is unavailable."""
    viewers = users[users["viewed"] > 0]
    purchasers = users[users["purchases"] > 0]
    if name == "hit_rate":
        return proportion(int((users["listed_purchases"] > 0).sum()), len(users), confidence)
    if name == "conversion_rate":
        return proportion(int((viewers["purchases"] > 0).sum()), len(viewers), confidence)
    if name == "add_to_cart_rate":
        return proportion(int((viewers["carted"] > 0).sum()), len(viewers), confidence)
    if name == "purchase_share":
        return ratio(users["listed_purchases"].to_numpy(), users["purchases"].to_numpy(), confidence)
    if name == "revenue_share":
        if users["revenue"].sum() == 0:
            return "no purchase with a price in the window"
        return ratio(users["listed_revenue"].to_numpy(), users["revenue"].to_numpy(), confidence)
    if name == "click_through_rate":
        if not impressions_logged:
            return "no impression events in the window: log impressions (and clicks) to measure it"
        shown = users[users["listed_impressions"] > 0]
        return ratio(shown["listed_clicks"].to_numpy(), shown["listed_impressions"].to_numpy(), confidence)
    if name == "repeat_purchase_rate":
        return proportion(int((purchasers["purchase_days"] >= 2).sum()), len(purchasers), confidence)
    raise KeyError(name)


def _arm_section(
    users: pd.DataFrame, listed: int, model: dict[str, Any], estimate: Callable[[str, pd.DataFrame], Estimate | str]
) -> dict[str, Any]:
    metrics = {name: estimate(name, users) for name in METRICS}
    return {
        "model": model,
        "users_with_list": listed,
        "exposed": len(users),
        "purchasers": int((users["purchases"] > 0).sum()),
        "purchases": int(users["purchases"].sum()),
        "revenue": float(users["revenue"].sum()),
        "metrics": {n: ({"unavailable": m} if isinstance(m, str) else m.to_dict()) for n, m in metrics.items()},
        "_estimates": metrics,
    }


def build_report(
    recommendations: pd.DataFrame,
    events: pd.DataFrame,
    window: Window,
    settings: OutcomesConfig,
    *,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """The outcome report (a JSON-ready dict) of the export ``recommendations`` over ``events``.

    ``recommendations`` are the export's ``user_topk`` rows (with ``arm``, ``model_name``,
    ``model_version``; rows without an ``arm`` are the champion's); ``events`` are the
    canonical events, of which those inside the window's observed part count. Pure: no I/O.
    """
    recs = recommendations
    if schema.ARM not in recs.columns or recs[schema.ARM].isna().any():  # exports before experiments
        arm = recs[schema.ARM] if schema.ARM in recs.columns else pd.Series(None, index=recs.index, dtype="str")
        recs = recs.assign(**{schema.ARM: arm.fillna(CHAMPION)})
    stamps = pd.to_datetime(events[schema.TIMESTAMP], utc=True)
    events = events[(stamps >= window.start) & (stamps < window.end)]
    users = user_outcomes(recs, events)
    impressions_logged = bool((events[schema.EVENT_TYPE] == schema.IMPRESSION).any())
    arm_of = recs.drop_duplicates(schema.USER_ID).set_index(schema.USER_ID)[schema.ARM]
    active_arm = arm_of.reindex(users.index)

    def estimate(name: str, rows: pd.DataFrame) -> Estimate | str:
        return _metric(name, rows, confidence, impressions_logged)

    arms: dict[str, dict[str, Any]] = {}
    for arm in ARMS:
        arm_recs = recs[recs[schema.ARM] == arm]
        if arm_recs.empty:
            continue
        first = arm_recs.iloc[0]
        model = {"name": str(first[schema.MODEL_NAME]), "version": str(first[schema.MODEL_VERSION])}
        listed = int((arm_of == arm).sum())
        arms[arm] = _arm_section(users[(active_arm == arm).to_numpy()], listed, model, estimate)
    unexposed = users[active_arm.isna().to_numpy()]
    report: dict[str, Any] = {
        "window": window.to_dict(),
        "partial": not window.complete,
        "arms": arms,
        "unexposed": {
            "users": len(unexposed),
            "purchasers": int((unexposed["purchases"] > 0).sum()),
            "purchases": int(unexposed["purchases"].sum()),
            "revenue": float(unexposed["revenue"].sum()),
        },
        "primary_metric": settings.primary_metric,
        "alpha": settings.alpha,
        "confidence": confidence,
    }
    report["comparison"], report["verdict"] = _compare(arms, settings, confidence)
    for section in arms.values():
        section.pop("_estimates")
    return report


def _compare(
    arms: dict[str, dict[str, Any]], settings: OutcomesConfig, confidence: float
) -> tuple[dict[str, Any] | None, str]:
    """Challenger minus champion for every metric available in both arms, Holm-adjusted; and the
    verdict on ``settings.primary_metric``."""
    if CHAMPION not in arms or CHALLENGER not in arms:
        return None, NO_EXPERIMENT
    control, treatment = arms[CHAMPION]["_estimates"], arms[CHALLENGER]["_estimates"]
    compared = [n for n in METRICS if isinstance(control[n], Estimate) and isinstance(treatment[n], Estimate)]
    diffs: dict[str, Difference] = {n: difference(control[n], treatment[n], confidence) for n in compared}
    adjusted = holm([d.p_value for d in diffs.values()])
    diffs = {
        n: Difference(d.value, d.low, d.high, d.z, d.p_value, p)
        for (n, d), p in zip(diffs.items(), adjusted, strict=True)
    }
    comparison = {
        "control": CHAMPION,
        "treatment": CHALLENGER,
        "test": TEST,
        "correction": CORRECTION,
        "metrics": {n: d.to_dict() for n, d in diffs.items()},
    }
    primary = diffs.get(settings.primary_metric)
    if primary is None or np.isnan(primary.p_adjusted) or primary.p_adjusted >= settings.alpha:
        return comparison, NOT_SIGNIFICANT
    return comparison, BETTER if primary.value > 0 else WORSE
