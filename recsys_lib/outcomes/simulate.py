"""A synthetic shop whose shoppers respond to the published recommendations (demos and tests).

Each simulated day, every shopper of the generator's shop (:class:`ShopTruth`) visits with
probability ``visit_rate``; a visit is one session that

* browses like the generator: a category drawn from the shopper's planted category shares, views of
  Zipf-popular items of it (three on average), each followed by an add-to-cart with probability
  :data:`~recsys_lib.sources.synthetic.CART_RATE` and that by a purchase with probability
  :data:`~recsys_lib.sources.synthetic.PURCHASE_RATE`;
* if the shopper has recommendations, first shows them: one ``impression`` per listed item (at
  ``placement``); each is clicked with probability ``click_rate * a``, where ``a`` in (0, 1] is
  the shopper's true affinity for the item (:meth:`ShopTruth.affinity`); a click is followed by a
  view, an add-to-cart with probability ``cart_rate * a`` and a purchase with ``purchase_rate``.

So a list of items the shopper truly likes earns more clicks and purchases than one that does
not, and an outcome report can tell a strong model from a weak one. ``new_visitors_per_day``
first-time visitors (``new-<day>-<n>``, never recommended to) browse uniformly random categories.
Pure: frames in, frames out; the same arguments give an identical frame, and each day's events
depend only on the seed and that day (so simulating a range or its days one by one agree).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd

from recsys_lib import schema
from recsys_lib.errors import ConfigError
from recsys_lib.sources.base import conform_events
from recsys_lib.sources.synthetic import CART_RATE, NEW_SESSION_RATE, PURCHASE_RATE, ShopTruth

#: Defaults: with affinity 1, a shown item is bought in a session with probability
#: 0.15 * 0.5 * 0.5 = 3.75%; with affinity 0.05 (a category the shopper does not prefer), 0.009%.
CLICK_RATE = 0.15
CART_RATE_AFTER_CLICK = 0.5
PURCHASE_RATE_AFTER_CLICK = 0.5
NEW_VISITORS_PER_DAY = 50
DAY_S = 86_400
_IMPRESSION, _CLICK, _VIEW, _CART, _PURCHASE = range(5)
Events = dict[str, np.ndarray]  # aligned event columns: session, item, offset, stage, quantity, price
_STAGE_NAMES = np.array(
    [schema.IMPRESSION, schema.CLICK, schema.VIEW, schema.ADD_TO_CART, schema.PURCHASE], dtype=object
)


def _check_rates(rates: dict[str, float], new_visitors_per_day: int, seed: int, placement: str) -> None:
    for name, value in rates.items():
        if not 0.0 < value <= 1.0:
            raise ConfigError(f"simulate_days: {name} must be in (0, 1], got {value}")
    if new_visitors_per_day < 0:
        raise ConfigError(f"simulate_days: new_visitors_per_day must be >= 0, got {new_visitors_per_day}")
    if seed < 0:
        raise ConfigError(f"simulate_days: seed must be >= 0, got {seed}")
    if not placement:
        raise ConfigError("simulate_days: placement must be a non-empty name such as 'home'")


def _shown(truth: ShopTruth, recommendations: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(user rows, item rows) of the recommendation rows of shopper ids the truth knows, in
    (user, rank) order; rows of other ids (pseudonyms, unknown shoppers) are not shown."""
    missing = [c for c in (schema.USER_ID, schema.ITEM_ID, schema.RANK) if c not in recommendations.columns]
    if missing:
        raise ConfigError(f"simulate_days: recommendations lack column(s) {', '.join(missing)}")
    user_rows = pd.Index(truth.user_ids).get_indexer(recommendations[schema.USER_ID].astype(str))
    item_rows = pd.Index(truth.items[schema.ITEM_ID]).get_indexer(recommendations[schema.ITEM_ID].astype(str))
    unknown = (user_rows >= 0) & (item_rows < 0)
    if unknown.any():
        examples = recommendations[schema.ITEM_ID][unknown].astype(str).unique()[:3].tolist()
        raise ConfigError(
            f"simulate_days: recommendations name {int(unknown.sum())} item(s) not in the shop's catalogue, "
            f"e.g. {examples}; was the export made from another shop?"
        )
    keep = user_rows >= 0
    order = np.lexsort((recommendations[schema.RANK].to_numpy()[keep], user_rows[keep]))
    return user_rows[keep][order], item_rows[keep][order]


def _item_sampler(truth: ShopTruth) -> tuple[np.ndarray, np.ndarray]:
    """Items sorted by category and a key in (c, c + 1] per item: its category's CDF plus c."""
    order = np.lexsort((-truth.item_within, truth.item_category))
    cat_sorted = truth.item_category[order]
    cum = np.cumsum(truth.item_within[order])
    starts = np.searchsorted(cat_sorted, cat_sorted, side="left")
    before = np.where(starts > 0, cum[starts - 1], 0.0)
    return order, cat_sorted + (cum - before)


def _draw_items(rng: np.random.Generator, sampler: tuple[np.ndarray, np.ndarray], category: np.ndarray) -> np.ndarray:
    """(n,) item rows: one Zipf-popular item of each given category."""
    order, key = sampler
    target = category + rng.random(len(category))
    return order[np.minimum(np.searchsorted(key, target, side="right"), len(order) - 1)]


def _session_categories(rng: np.random.Generator, share: np.ndarray, n_new: int) -> np.ndarray:
    """(n_sessions,) a category per session: by each shopper's ``share`` row, uniform for newcomers."""
    cum = np.cumsum(share, axis=1)  # (n_visitors, n_categories)
    drawn = (rng.random(len(share))[:, None] >= cum).sum(axis=1)
    n_categories = share.shape[1]
    return np.concatenate((np.minimum(drawn, n_categories - 1), rng.integers(n_categories, size=n_new)))


def _browse(rng: np.random.Generator, category: np.ndarray, sampler: tuple[np.ndarray, np.ndarray]) -> Events:
    """Browsing views of every session: session, item, offset (s since the session start, >= 10)."""
    per_session = rng.geometric(NEW_SESSION_RATE, size=len(category))  # >= 1 view, three on average
    session = np.repeat(np.arange(len(category)), per_session)
    gaps = rng.integers(10, 240, size=len(session))
    elapsed = np.cumsum(gaps)
    first = np.concatenate(([0], np.cumsum(per_session)[:-1]))
    offset = elapsed - (elapsed[first] - gaps[first])[session]
    return {"session": session, "item": _draw_items(rng, sampler, category[session]), "offset": offset}


def _funnel(
    rng: np.random.Generator, views: Events, cart_p: np.ndarray, buy_p: np.ndarray, price: np.ndarray
) -> Events:
    """Carts (probability ``cart_p`` per view) and purchases (``buy_p`` per cart) after ``views``."""
    cart = np.flatnonzero(rng.random(len(cart_p)) < cart_p)
    cart_offset = views["offset"][cart] + rng.integers(5, 120, size=len(cart))
    quantity = 1 + rng.poisson(0.3, size=len(cart))
    bought = rng.random(len(cart)) < buy_p[cart]
    buy = cart[bought]
    rows = np.concatenate((cart, buy))
    return {
        "session": views["session"][rows],
        "item": views["item"][rows],
        "offset": np.concatenate((cart_offset, cart_offset[bought] + rng.integers(30, 600, size=len(buy)))),
        "stage": np.repeat([_CART, _PURCHASE], [len(cart), len(buy)]),
        "quantity": np.concatenate((quantity, quantity[bought])),
        "price": np.concatenate((np.full(len(cart), np.nan), price[views["item"][buy]])),
    }


def _part(session: np.ndarray, item: np.ndarray, offset: np.ndarray, stage: int) -> Events:
    """Aligned event columns of one stage without quantity or price."""
    n = len(session)
    return {
        "session": session,
        "item": item,
        "offset": offset,
        "stage": np.full(n, stage),
        "quantity": np.zeros(n, np.int64),
        "price": np.full(n, np.nan),
    }


def _respond(
    rng: np.random.Generator,
    shown: tuple[np.ndarray, np.ndarray, np.ndarray],
    session_of: np.ndarray,
    click_rate: float,
) -> tuple[Events, Events, np.ndarray]:
    """Impressions of the visiting shoppers' lists (at the session start), the clicks on them
    (probability ``click_rate * affinity``) and the clicked items' affinity (n_clicks,)."""
    shown_user, shown_item, shown_affinity = shown
    seen = np.flatnonzero(session_of[shown_user] >= 0)  # shown rows of today's visitors
    session, item, affinity = session_of[shown_user[seen]], shown_item[seen], shown_affinity[seen]
    clicked = rng.random(len(seen)) < click_rate * affinity
    click_offset = rng.integers(5, 600, size=int(clicked.sum()))
    impressions = _part(session, item, np.zeros(len(seen), np.int64), _IMPRESSION)
    return impressions, _part(session[clicked], item[clicked], click_offset, _CLICK), affinity[clicked]


def _one_day(
    rng: np.random.Generator,
    truth: ShopTruth,
    shown: tuple[np.ndarray, np.ndarray, np.ndarray],
    n_new: int,
    rates: dict[str, float],
) -> tuple[Events, np.ndarray]:
    """Events of one day (columns aligned, ``offset`` in seconds since the session start) and
    the truth rows of the day's visiting shoppers (sessions 0 .. n - 1; newcomers follow)."""
    visitors = np.flatnonzero(rng.random(len(truth.user_ids)) < rates["visit_rate"])
    category = _session_categories(rng, truth.category_share()[visitors], n_new)  # (n_sessions,)
    browse = _browse(rng, category, _item_sampler(truth))
    session_of = np.full(len(truth.user_ids), -1)
    session_of[visitors] = np.arange(len(visitors))
    impressions, clicks, affinity = _respond(rng, shown, session_of, rates["click_rate"])
    after_click = clicks["offset"] + rng.integers(1, 10, size=len(affinity))  # the clicked item's page
    views = _part(
        np.r_[browse["session"], clicks["session"]],
        np.r_[browse["item"], clicks["item"]],
        np.r_[browse["offset"], after_click],
        _VIEW,
    )
    n_browse = len(browse["item"])
    cart_p = np.r_[np.full(n_browse, CART_RATE), rates["cart_rate"] * affinity]
    buy_p = np.r_[np.full(n_browse, PURCHASE_RATE), np.full(len(affinity), rates["purchase_rate"])]
    price = truth.items[schema.PRICE].to_numpy(dtype=float)
    parts = [impressions, clicks, views, _funnel(rng, views, cart_p, buy_p, price)]
    events = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    events["second"] = _seconds(rng, events, len(category))
    return events, visitors


def _seconds(rng: np.random.Generator, events: Events, n_sessions: int) -> np.ndarray:
    """(n_events,) seconds since midnight: each session starts uniformly where it still fits the day."""
    duration = np.zeros(n_sessions, dtype=np.int64)
    np.maximum.at(duration, events["session"], events["offset"])
    start = np.floor(rng.random(n_sessions) * np.maximum(DAY_S - duration, 1)).astype(np.int64)
    return np.minimum(start[events["session"]] + events["offset"], DAY_S - 1)


def _to_frame(events: Events, session_user: np.ndarray, day: date, truth: ShopTruth, placement: str) -> pd.DataFrame:
    """Canonical events of one day sorted by time (then session, then funnel stage)."""
    order = np.lexsort((events["stage"], events["session"], events["second"]))
    stage, session = events["stage"][order], events["session"][order]
    tag = day.strftime("%Y%m%d")
    session_ids = np.array([f"sim-{tag}-{s:06d}" for s in range(len(session_user))], dtype=object)
    quantity = pd.array(events["quantity"][order], dtype="Int64")
    quantity[stage < _CART] = pd.NA
    midnight = pd.Timestamp(datetime.combine(day, datetime.min.time(), tzinfo=UTC))
    frame = pd.DataFrame(
        {
            schema.USER_ID: session_user[session],
            schema.ITEM_ID: truth.items[schema.ITEM_ID].to_numpy(dtype=object)[events["item"][order]],
            schema.EVENT_TYPE: _STAGE_NAMES[stage],
            schema.TIMESTAMP: midnight + pd.to_timedelta(events["second"][order], unit="s"),
            schema.QUANTITY: quantity,
            schema.PRICE: events["price"][order],
            schema.SESSION_ID: session_ids[session],
            schema.PLACEMENT: pd.Series(placement, index=range(len(stage))).where(stage <= _CLICK),
        }
    )
    return conform_events(frame)


def simulate_days(
    truth: ShopTruth,
    recommendations: pd.DataFrame,
    days: list[date],
    *,
    seed: int = 0,
    visit_rate: float = 0.3,
    new_visitors_per_day: int = NEW_VISITORS_PER_DAY,
    placement: str = "home",
    click_rate: float = CLICK_RATE,
    cart_rate: float = CART_RATE_AFTER_CLICK,
    purchase_rate: float = PURCHASE_RATE_AFTER_CLICK,
) -> pd.DataFrame:
    """Canonical events of ``days`` (UTC) in a shop whose shoppers see ``recommendations``
    (see the module docstring), sorted by timestamp; impressions and clicks carry ``placement``.

    ``recommendations``: rows with ``user_id``, ``item_id`` and ``rank`` (a published export);
    every row of a visiting shopper is shown, in rank order; rows of ids the truth does not know
    are ignored. Raises ConfigError naming the argument for a rate outside (0, 1], a negative
    count or seed, repeated days, a missing column or an item outside the catalogue.
    """
    rates = {
        "visit_rate": visit_rate,
        "click_rate": click_rate,
        "cart_rate": cart_rate,
        "purchase_rate": purchase_rate,
    }
    _check_rates(rates, new_visitors_per_day, seed, placement)
    if len(set(days)) != len(days):
        raise ConfigError(f"simulate_days: days must be distinct, got {sorted(map(str, days))}")
    shown_user, shown_item = _shown(truth, recommendations)
    shown = (shown_user, shown_item, truth.affinity(shown_user, shown_item))
    frames = []
    for day in sorted(days):
        rng = np.random.default_rng([seed, day.toordinal()])
        events, visitors = _one_day(rng, truth, shown, new_visitors_per_day, rates)
        tag = day.strftime("%Y%m%d")
        newcomers = np.array([f"new-{tag}-{n:05d}" for n in range(new_visitors_per_day)], dtype=object)
        session_user = np.concatenate((truth.user_ids[visitors], newcomers))
        frames.append(_to_frame(events, session_user, day, truth, placement))
    if not frames:
        return conform_events(pd.DataFrame(columns=list(schema.EVENTS_DTYPES)))
    return pd.concat(frames, ignore_index=True)
