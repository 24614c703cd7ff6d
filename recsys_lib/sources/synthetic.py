"""A seeded synthetic shop for demos and tests: a catalogue and a view -> cart -> purchase log.

The planted structure is what a recommender should find, and it holds over the whole time range:

* each user prefers one or two categories, and each session stays in one category, which is a
  preferred one with probability :data:`PREFERRED_SHARE` (so ~80-85% of a user's events fall in
  their preferred categories);
* within a category, item popularity is Zipf-like (weight ``rank ** -ZIPF_EXPONENT``);
* activity is log-normal: a few heavy users, many light ones, every user at least
  :data:`MIN_VIEWS_PER_USER` views;
* a funnel: every cart follows a view of the same item in the same session, every purchase
  follows a cart (~70% views, ~20% carts, ~10% purchases).

Everything is vectorised numpy; the same arguments always give identical frames.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from recsys_lib import schema
from recsys_lib.errors import ConfigError
from recsys_lib.sources.base import conform_events
from recsys_lib.sources.synthetic_catalogue import Catalogue, generate_catalogue

PREFERRED_SHARE = 0.8  # sessions spent in one of the user's preferred categories
SECOND_PREFERENCE_SHARE = 0.4  # of those, the share in the second category (two-category users)
TWO_PREFERENCES_SHARE = 0.5  # users with two preferred categories
ZIPF_EXPONENT = 1.0
MIN_VIEWS_PER_USER = 5
VIEWS_LOG_MEAN, VIEWS_LOG_SIGMA, MAX_VIEWS_PER_USER = 2.0, 1.0, 500  # extra views per user, log-normal
NEW_SESSION_RATE = 1 / 3  # chance a view starts a new session (mean session: three views)
CART_RATE = 2 / 7  # views followed by an add-to-cart
PURCHASE_RATE = 0.5  # carts followed by a purchase
_VIEW, _CART, _PURCHASE = 0, 1, 2
_STAGE_NAMES = np.array([schema.VIEW, schema.ADD_TO_CART, schema.PURCHASE], dtype=object)


def _check_args(n_users: int, n_items: int, n_categories: int, n_brands: int, days: int) -> None:
    for name, value in (("n_users", n_users), ("n_categories", n_categories), ("n_brands", n_brands), ("days", days)):
        if value < 1:
            raise ConfigError(f"generate_shop: {name} must be >= 1, got {value}")
    if n_items < n_categories:
        raise ConfigError(f"generate_shop: n_items ({n_items}) must be >= n_categories ({n_categories})")


def _item_sampler(rng: np.random.Generator, category_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Items sorted by category and a key in (c, c + 1] per item: its category's Zipf CDF plus c.

    ``order[searchsorted(key, c + u, side="right")]`` with ``u ~ U[0, 1)`` draws an item of
    category ``c`` with Zipf-like probability (a random popularity rank within the category).
    """
    order = np.lexsort((rng.random(len(category_idx)), category_idx))  # (n_items,)
    cat_sorted = category_idx[order]
    starts = np.searchsorted(cat_sorted, cat_sorted, side="left")
    rank = np.arange(len(order)) - starts
    weight = (rank + 1.0) ** -ZIPF_EXPONENT
    cum = np.cumsum(weight)
    before = np.where(starts > 0, cum[starts - 1], 0.0)
    ends = np.searchsorted(cat_sorted, cat_sorted, side="right") - 1
    within = (cum - before) / (cum[ends] - before)
    within[np.unique(ends)] = 1.0  # exactly 1.0 at each category's last item, whatever the rounding
    return order, cat_sorted + within


def _user_preferences(rng: np.random.Generator, n_users: int, n_categories: int) -> tuple[np.ndarray, np.ndarray]:
    """First and second preferred category per user (equal when the user has only one)."""
    first = rng.integers(n_categories, size=n_users)
    if n_categories == 1:
        return first, first
    other = (first + 1 + rng.integers(n_categories - 1, size=n_users)) % n_categories
    two = rng.random(n_users) < TWO_PREFERENCES_SHARE
    return first, np.where(two, other, first)


def _sessions(rng: np.random.Generator, n_users: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """User and session of every view, and which views open a session (each user's first does)."""
    extra = np.floor(rng.lognormal(VIEWS_LOG_MEAN, VIEWS_LOG_SIGMA, size=n_users)).astype(np.int64)
    per_user = np.minimum(MIN_VIEWS_PER_USER + extra, MAX_VIEWS_PER_USER)
    user = np.repeat(np.arange(n_users), per_user)  # (n_views,)
    opens = rng.random(len(user)) < NEW_SESSION_RATE
    opens[np.concatenate(([0], np.cumsum(per_user)[:-1]))] = True
    return user, np.cumsum(opens) - 1, opens


def _session_categories(rng: np.random.Generator, session_user: np.ndarray, n_categories: int) -> np.ndarray:
    """One category per session: a preferred one of its user with probability PREFERRED_SHARE."""
    first, second = _user_preferences(rng, int(session_user.max()) + 1, n_categories)
    pick_second = rng.random(len(session_user)) < SECOND_PREFERENCE_SHARE
    preferred = np.where(pick_second, second[session_user], first[session_user])
    in_preferred = rng.random(len(session_user)) < PREFERRED_SHARE
    return np.where(in_preferred, preferred, rng.integers(n_categories, size=len(session_user)))


def _views(rng: np.random.Generator, n_users: int, catalogue: Catalogue) -> dict[str, np.ndarray]:
    """Every view: user, session, item and seconds since its session started."""
    user, session, opens = _sessions(rng, n_users)
    n_categories = int(catalogue.category_idx.max()) + 1
    session_category = _session_categories(rng, user[opens], n_categories)  # (n_sessions,)
    order, key = _item_sampler(rng, catalogue.category_idx)
    target = session_category[session] + rng.random(len(user))
    item = order[np.minimum(np.searchsorted(key, target, side="right"), len(order) - 1)]
    elapsed = np.cumsum(rng.integers(10, 240, size=len(user)))  # 10 s to 4 min between views
    offset = elapsed - elapsed[opens][session]  # 0 at each session's first view
    return {"user": user, "session": session, "item": item, "offset": offset}


def _funnel(rng: np.random.Generator, views: dict[str, np.ndarray], price: np.ndarray) -> dict[str, np.ndarray]:
    """Views plus the carts and purchases that follow them, as aligned event columns."""
    cart = np.flatnonzero(rng.random(len(views["user"])) < CART_RATE)
    cart_offset = views["offset"][cart] + rng.integers(5, 120, size=len(cart))
    cart_quantity = 1 + rng.poisson(0.3, size=len(cart))
    bought = rng.random(len(cart)) < PURCHASE_RATE
    buy = cart[bought]
    buy_offset = cart_offset[bought] + rng.integers(30, 600, size=len(buy))
    n_view = len(views["user"])
    rows = np.concatenate((np.arange(n_view), cart, buy))  # source view of each event
    return {
        "user": views["user"][rows],
        "session": views["session"][rows],
        "item": views["item"][rows],
        "offset": np.concatenate((views["offset"], cart_offset, buy_offset)),
        "stage": np.repeat([_VIEW, _CART, _PURCHASE], [n_view, len(cart), len(buy)]),
        "quantity": np.concatenate((np.zeros(n_view, np.int64), cart_quantity, cart_quantity[bought])),
        "price": np.concatenate((np.full(n_view + len(cart), np.nan), price[views["item"][buy]])),
    }


def _seconds(rng: np.random.Generator, events: dict[str, np.ndarray], window_s: int) -> np.ndarray:
    """Seconds since the window start: each session starts uniformly where it still fits."""
    n_sessions = int(events["session"].max()) + 1
    duration = np.zeros(n_sessions, dtype=np.int64)
    np.maximum.at(duration, events["session"], events["offset"])
    room = np.maximum(window_s - duration, 1)
    start = np.floor(rng.random(n_sessions) * room).astype(np.int64)
    return np.minimum(start[events["session"]] + events["offset"], window_s - 1)


def _utc(end: datetime) -> pd.Timestamp:
    ts = pd.Timestamp(end)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _to_frame(
    events: dict[str, np.ndarray], seconds: np.ndarray, start: pd.Timestamp, item_ids: np.ndarray
) -> pd.DataFrame:
    """Canonical events frame, sorted by time (then user, then funnel stage)."""
    order = np.lexsort((events["stage"], events["user"], seconds))
    n_users = int(events["user"].max()) + 1
    user_width, session_width = max(5, len(str(n_users - 1))), max(6, len(str(int(events["session"].max()))))
    user_ids = np.array([f"u{u:0{user_width}d}" for u in range(n_users)], dtype=object)
    stage = events["stage"][order]
    quantity = pd.array(events["quantity"][order], dtype="Int64")
    quantity[stage == _VIEW] = pd.NA
    frame = pd.DataFrame(
        {
            schema.USER_ID: user_ids[events["user"][order]],
            schema.ITEM_ID: item_ids[events["item"][order]],
            schema.EVENT_TYPE: _STAGE_NAMES[stage],
            schema.TIMESTAMP: start + pd.to_timedelta(seconds[order], unit="s"),
            schema.QUANTITY: quantity,
            schema.PRICE: events["price"][order],
            schema.SESSION_ID: [f"s{s:0{session_width}d}" for s in events["session"][order]],
        }
    )
    return conform_events(frame)


def generate_shop(
    *,
    n_users: int = 1000,
    n_items: int = 400,
    n_categories: int = 8,
    n_brands: int = 25,
    days: int = 60,
    end: datetime,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Canonical (events, items) of a synthetic shop over ``[end - days, end)``.

    ``end`` is the exclusive end of the time range (a naive datetime is taken as UTC); every
    timestamp is strictly before it. About 24 events per user on average. Raises ConfigError for
    a non-positive count or fewer items than categories.
    """
    _check_args(n_users, n_items, n_categories, n_brands, days)
    rng = np.random.default_rng(seed)
    catalogue = generate_catalogue(rng, n_items, n_categories, n_brands)
    events = _funnel(rng, _views(rng, n_users, catalogue), catalogue.price)
    seconds = _seconds(rng, events, window_s=days * 86_400)
    start = _utc(end) - pd.Timedelta(days=days)
    return _to_frame(events, seconds, start, catalogue.items[schema.ITEM_ID].to_numpy()), catalogue.items
