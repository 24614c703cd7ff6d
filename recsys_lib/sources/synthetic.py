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
:func:`shop_truth` replays the same draws to return the planted preferences themselves
(:class:`ShopTruth`), for simulations that need to know what each shopper truly likes.
"""

from __future__ import annotations

from dataclasses import dataclass
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
N_CATEGORIES, N_BRANDS = 8, 25  # defaults of generate_shop and shop_truth
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


def _session_categories(
    rng: np.random.Generator, session_user: np.ndarray, first: np.ndarray, second: np.ndarray, n_categories: int
) -> np.ndarray:
    """One category per session: a preferred one of its user with probability PREFERRED_SHARE."""
    pick_second = rng.random(len(session_user)) < SECOND_PREFERENCE_SHARE
    preferred = np.where(pick_second, second[session_user], first[session_user])
    in_preferred = rng.random(len(session_user)) < PREFERRED_SHARE
    return np.where(in_preferred, preferred, rng.integers(n_categories, size=len(session_user)))


def _views(
    rng: np.random.Generator, n_users: int, catalogue: Catalogue
) -> tuple[dict[str, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Every view (user, session, item, seconds since its session started) and the planted
    structure it was drawn from: (first, second) preferred category per user and the item sampler
    (order, key) of :func:`_item_sampler`."""
    user, session, opens = _sessions(rng, n_users)  # every user has views, so users 0 .. n_users - 1
    n_categories = int(catalogue.category_idx.max()) + 1
    first, second = _user_preferences(rng, n_users, n_categories)  # (n_users,) each
    session_category = _session_categories(rng, user[opens], first, second, n_categories)  # (n_sessions,)
    order, key = _item_sampler(rng, catalogue.category_idx)
    target = session_category[session] + rng.random(len(user))
    item = order[np.minimum(np.searchsorted(key, target, side="right"), len(order) - 1)]
    elapsed = np.cumsum(rng.integers(10, 240, size=len(user)))  # 10 s to 4 min between views
    offset = elapsed - elapsed[opens][session]  # 0 at each session's first view
    return {"user": user, "session": session, "item": item, "offset": offset}, (first, second, order, key)


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
    seconds: np.ndarray = np.minimum(start[events["session"]] + events["offset"], window_s - 1)
    return seconds


def _utc(end: datetime) -> pd.Timestamp:
    ts = pd.Timestamp(end)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _user_ids(n_users: int) -> np.ndarray:
    """``u00000`` ...: user ids as the events carry them (five digits at least)."""
    width = max(5, len(str(n_users - 1)))
    return np.array([f"u{u:0{width}d}" for u in range(n_users)], dtype=object)


def _to_frame(
    events: dict[str, np.ndarray], seconds: np.ndarray, start: pd.Timestamp, item_ids: np.ndarray
) -> pd.DataFrame:
    """Canonical events frame, sorted by time (then user, then funnel stage)."""
    order = np.lexsort((events["stage"], events["user"], seconds))
    n_users = int(events["user"].max()) + 1
    session_width = max(6, len(str(int(events["session"].max()))))
    user_ids = _user_ids(n_users)
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
    n_categories: int = N_CATEGORIES,
    n_brands: int = N_BRANDS,
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
    views, _ = _views(rng, n_users, catalogue)
    events = _funnel(rng, views, catalogue.price)
    seconds = _seconds(rng, events, window_s=days * 86_400)
    start = _utc(end) - pd.Timedelta(days=days)
    return _to_frame(events, seconds, start, catalogue.items[schema.ITEM_ID].to_numpy()), catalogue.items


@dataclass(frozen=True)
class ShopTruth:
    """The planted structure of one :func:`generate_shop` shop: what a recommender should find.

    Rows align with ``items`` (catalogue order) and with ``user_ids`` (``u00000`` ...).
    """

    items: pd.DataFrame
    """The canonical catalogue, exactly as generate_shop returns it."""
    item_category: np.ndarray
    """(n_items,) int: category index of each catalogue row."""
    item_within: np.ndarray
    """(n_items,) float: probability that a view in the item's category is of this item (Zipf)."""
    user_ids: np.ndarray
    """(n_users,) object: user ids as the events carry them."""
    first: np.ndarray
    """(n_users,) int: each user's favourite category."""
    second: np.ndarray
    """(n_users,) int: the second preferred category (equal to ``first`` for one-category users)."""

    @property
    def n_categories(self) -> int:
        """Categories planted in the catalogue: the largest category index + 1."""
        return int(self.item_category.max()) + 1

    def category_share(self) -> np.ndarray:
        """(n_users, n_categories): probability that a session of the user is in each category:
        ``(1 - PREFERRED_SHARE) / n_categories`` everywhere, plus PREFERRED_SHARE split between the
        first and second preferred category as SECOND_PREFERENCE_SHARE says (all on the first for
        one-category users). Rows sum to 1."""
        rows = np.arange(len(self.first))
        share = np.full((len(rows), self.n_categories), (1.0 - PREFERRED_SHARE) / self.n_categories)
        share[rows, self.first] += PREFERRED_SHARE * (1.0 - SECOND_PREFERENCE_SHARE)
        share[rows, self.second] += PREFERRED_SHARE * SECOND_PREFERENCE_SHARE  # on first too if equal
        return share

    def affinity(self, user_rows: np.ndarray, item_rows: np.ndarray) -> np.ndarray:
        """(n,) float in (0, 1]: how much each user likes each item (aligned arrays of row indices):
        the session share of the item's category over the user's largest share. With 8 categories:
        1 for every item of the favourite category, 0.68 for the second preferred one and 0.03-0.05
        for a category the user does not prefer.
        """
        share = self.category_share()  # (n_users, n_categories)
        affinity: np.ndarray = share[user_rows, self.item_category[item_rows]] / share.max(axis=1)[user_rows]
        return affinity


def _within_probability(order: np.ndarray, key: np.ndarray, category_idx: np.ndarray) -> np.ndarray:
    """(n_items,) the item sampler's probability of each item given its category."""
    cat_sorted = category_idx[order]
    cdf = key - cat_sorted  # (n_items,) in (0, 1], sorted by category then popularity rank
    before = np.where(np.r_[True, cat_sorted[1:] != cat_sorted[:-1]], 0.0, np.r_[0.0, cdf[:-1]])
    within = np.empty(len(order))
    within[order] = cdf - before
    return within


def shop_truth(
    *, n_users: int, n_items: int, n_categories: int = N_CATEGORIES, n_brands: int = N_BRANDS, seed: int = 0
) -> ShopTruth:
    """The planted preferences of ``generate_shop(n_users=..., n_items=..., seed=...)``.

    Replays the generator's own draws (catalogue, then views, which draw the preferences and the
    item popularity), so the truth is exactly the one the events came from, whatever ``days``
    and ``end`` were. Raises ConfigError like generate_shop.
    """
    _check_args(n_users, n_items, n_categories, n_brands, 1)
    rng = np.random.default_rng(seed)
    catalogue = generate_catalogue(rng, n_items, n_categories, n_brands)
    _, (first, second, order, key) = _views(rng, n_users, catalogue)
    return ShopTruth(
        items=catalogue.items,
        item_category=catalogue.category_idx,
        item_within=_within_probability(order, key, catalogue.category_idx),
        user_ids=_user_ids(n_users),
        first=first,
        second=second,
    )
