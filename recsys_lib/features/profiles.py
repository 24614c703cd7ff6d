"""Shopper profiles: what each user looks at, how they buy, and whether they are slipping away.

:func:`user_profiles` turns canonical events and the catalogue into one row per user (the
``user_profiles`` export table, columns in :data:`recsys_lib.schema.USER_PROFILES_DTYPES`). Pure and
vectorised: group-bys and sorts over integer codes, no Python loop per user or event. The segment
and churn rules (:func:`rfm_segments`, :func:`churn_risk`) are documented in the README too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from recsys_lib import schema

#: Events that show a preference (views, carts, purchases); impressions and clicks do not count.
INTERACTIONS = (schema.VIEW, schema.ADD_TO_CART, schema.PURCHASE)
TOP_N = 3
#: A repeat buyer is at risk once silent for more than this many times their median gap (days)
#: between purchase days; a one-time buyer once silent for more than ``ONE_TIME_SILENCE_DAYS``.
CHURN_GAP_FACTOR = 2.0
ONE_TIME_SILENCE_DAYS = 60
_DAY_US = 86_400_000_000


def user_profiles(events: pd.DataFrame, items: pd.DataFrame, *, as_of: pd.Timestamp) -> pd.DataFrame:
    """One row per user with events (sorted by user id), columns of ``schema.USER_PROFILES_DTYPES``.

    - ``top_categories`` / ``top_brands``: the (at most) 3 categories / brands of the catalogue items
      the user viewed, carted or bought most often (each event counts once; ties by name), with
      ``category_shares`` / ``brand_shares`` their shares of those events whose item has one
      (float32); empty lists when none has.
    - ``price_band``: ``low`` / ``mid`` / ``high``: the median catalogue price of the distinct items
      the user interacted with, at or below the catalogue's lower price tertile, above the upper
      one, or between; null when none of them has a price.
    - ``recency_days``: whole days from the last purchase to ``as_of`` (also "days since last
      purchase"; null: never bought); ``frequency``: distinct UTC purchase days; ``monetary``: the
      sum of price x quantity over purchases (the event's price, else the catalogue's, else 0;
      quantity 1 when null).
    - ``rfm_score`` / ``rfm_segment``: :func:`rfm_segments`; ``churn_risk``: :func:`churn_risk`.

    ``events`` needs user_id, item_id, event_type, timestamp, quantity and price; ``items`` item_id,
    category, brand and price. Raises ValueError when ``as_of`` is before the newest purchase.
    """
    codes, users = pd.factorize(events[schema.USER_ID], sort=True)  # (n_events,) user code
    n_users = len(users)
    catalogue = items.drop_duplicates(schema.ITEM_ID).set_index(schema.ITEM_ID)
    at = catalogue.index.get_indexer(events[schema.ITEM_ID])  # (n_events,) catalogue row, -1: unknown
    seen = np.isin(events[schema.EVENT_TYPE].to_numpy(), INTERACTIONS)
    catalogue_price = catalogue[schema.PRICE].astype("float64").to_numpy(na_value=np.nan)
    out = pd.DataFrame({schema.USER_ID: pd.Series(users, dtype="str")})
    for column, names, shares in (
        (schema.CATEGORY, schema.TOP_CATEGORIES, schema.CATEGORY_SHARES),
        (schema.BRAND, schema.TOP_BRANDS, schema.BRAND_SHARES),
    ):
        value_codes, labels = pd.factorize(catalogue[column], sort=True)  # -1: none; codes in name order
        per_event = np.append(value_codes, -1)[at[seen]]  # row -1 (not in the catalogue) takes the -1
        out[names], out[shares] = _top_shares(codes[seen], per_event, np.asarray(labels, dtype=str), n_users)
    out[schema.PRICE_BAND] = _price_bands(codes[seen], at[seen], catalogue_price, n_users)

    recency, frequency, monetary, median_gap = _purchases(events, codes, at, catalogue_price, as_of, n_users)
    out[schema.RECENCY_DAYS] = pd.array(recency, dtype="float64").astype("Int32")
    out[schema.FREQUENCY] = frequency.astype("int32")
    out[schema.MONETARY] = monetary
    out[schema.RFM_SCORE], out[schema.RFM_SEGMENT] = rfm_segments(recency, frequency, monetary)
    out[schema.CHURN_RISK] = churn_risk(recency, frequency, median_gap)
    return out.astype({c: t for c, t in schema.USER_PROFILES_DTYPES.items() if not t.startswith("list<")})


def _purchases(
    events: pd.DataFrame,
    codes: np.ndarray,
    at: np.ndarray,
    catalogue_price: np.ndarray,
    as_of: pd.Timestamp,
    n_users: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(n_users,)`` recency (whole days, NaN: never bought), frequency (distinct UTC purchase
    days), monetary and median gap between purchase days (NaN below two) from the purchase events.

    ``codes``: user code per event; ``at``: catalogue row per event (-1: unknown);
    ``catalogue_price``: price per catalogue row (NaN: none)."""
    bought = events[schema.EVENT_TYPE].to_numpy() == schema.PURCHASE
    micros = _utc_micros(events[schema.TIMESTAMP][bought])
    as_of_us = _utc_micros(pd.Series([as_of]))[0]
    if bought.any() and micros.max() > as_of_us:
        raise ValueError(f"as_of {as_of} is before the newest purchase; pass the newest event's timestamp or later")
    price = events[schema.PRICE][bought].astype("float64").to_numpy(na_value=np.nan)
    price = np.where(np.isnan(price), np.append(catalogue_price, np.nan)[at[bought]], price)  # row -1: NaN
    quantity = events[schema.QUANTITY][bought].astype("Float64").fillna(1.0).to_numpy(dtype="float64")
    monetary = np.bincount(codes[bought], weights=np.nan_to_num(price) * quantity, minlength=n_users)
    last = pd.Series(micros).groupby(codes[bought]).max().reindex(range(n_users)).to_numpy()
    recency = (as_of_us - last) // _DAY_US
    days = pd.DataFrame({"user": codes[bought], "day": micros // _DAY_US}).drop_duplicates()
    frequency = np.bincount(days["user"], minlength=n_users)
    return recency, frequency, monetary, _median_gaps(days, n_users)


def rfm_segments(recency: np.ndarray, frequency: np.ndarray, monetary: np.ndarray) -> tuple[pd.Series, pd.Series]:
    """(``rfm_score``, ``rfm_segment``) per user from ``(n_users,)`` recency (days, NaN: never
    bought), frequency (purchase days) and monetary arrays.

    R, F and M are quintile scores 1-5 over the users who bought (:func:`quintile_scores`; a more
    recent, more frequent or bigger spender scores higher), written as the digits ``"RFM"``. The
    first rule that holds names the segment:

    ============  ==============================================
    champions     R >= 4, F >= 4 and M >= 4
    loyal         F >= 4 and R >= 3
    at_risk       R <= 2 and (F >= 3 or M >= 4): bought often or much, not lately
    new           R >= 4 and a single purchase day
    hibernating   R <= 2
    potential     every other buyer
    browsers      never bought (score null)
    ============  ==============================================
    """
    buyers = ~np.isnan(recency)
    r, f, m = (np.zeros(len(recency), dtype=np.int64) for _ in range(3))
    r[buyers] = quintile_scores(-recency[buyers])
    f[buyers] = quintile_scores(frequency[buyers].astype("float64"))
    m[buyers] = quintile_scores(monetary[buyers].astype("float64"))
    rules = [
        (r >= 4) & (f >= 4) & (m >= 4),
        (f >= 4) & (r >= 3),
        (r <= 2) & ((f >= 3) | (m >= 4)),
        (r >= 4) & (frequency == 1),
        r <= 2,
    ]
    names = schema.RFM_SEGMENTS
    segment = np.where(buyers, np.select(rules, names[:5], default=names[5]), names[6])
    digits = pd.Series(r.astype(str), dtype="str") + pd.Series(f.astype(str)) + pd.Series(m.astype(str))
    return digits.where(buyers), pd.Series(segment, dtype="str")


def quintile_scores(values: np.ndarray) -> np.ndarray:
    """``(n,)`` int64 scores 1-5, higher for larger ``values``: ``1 + floor(5 (rank - 1) / n)`` with
    ``rank`` the 1-based ascending rank, ties sharing the lowest (so 5 distinct values score 1..5,
    and the many one-purchase-day shoppers all score F = 1)."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    rank = pd.Series(values).rank(method="min").to_numpy()
    scores: np.ndarray = (1 + np.floor(5 * (rank - 1) / len(values))).astype(np.int64)
    return scores


def churn_risk(recency: np.ndarray, frequency: np.ndarray, median_gap: np.ndarray) -> np.ndarray:
    """``(n_users,)`` bool: a repeat buyer (2+ purchase days) silent for more than
    ``CHURN_GAP_FACTOR`` times their median gap in days between purchase days, or a one-time buyer
    silent for more than ``ONE_TIME_SILENCE_DAYS`` days; never a user who has not bought."""
    with np.errstate(invalid="ignore"):
        repeat = (frequency >= 2) & (recency > CHURN_GAP_FACTOR * median_gap)
        once = (frequency == 1) & (recency > ONE_TIME_SILENCE_DAYS)
    return np.asarray(repeat | once, dtype=bool)


def _median_gaps(days: pd.DataFrame, n_users: int) -> np.ndarray:
    """``(n_users,)`` median days between a user's consecutive distinct purchase days (NaN below 2)."""
    days = days.sort_values(["user", "day"])
    same = days["user"].to_numpy()[1:] == days["user"].to_numpy()[:-1]
    gaps = np.diff(days["day"].to_numpy())[same]
    medians: np.ndarray = (
        pd.Series(gaps).groupby(days["user"].to_numpy()[1:][same]).median().reindex(range(n_users)).to_numpy()
    )
    return medians


def _top_shares(codes: np.ndarray, values: np.ndarray, labels: np.ndarray, n_users: int) -> tuple[pd.Series, pd.Series]:
    """Each user's ``TOP_N`` most frequent values (ties by label) and their shares of the user's
    events with a value, as Arrow list columns of ``n_users`` rows (empty lists for none).

    ``codes``: (n,) user code per event; ``values``: (n,) index into ``labels`` (sorted names), -1
    for none."""
    known = values >= 0
    width = max(len(labels), 1)
    pairs, counts = np.unique(codes[known].astype(np.int64) * width + values[known], return_counts=True)
    user, value = pairs // width, pairs % width  # sorted by user
    share = counts / np.bincount(user, weights=counts, minlength=n_users)[user]
    order = np.lexsort((value, -counts, user))  # by user, most frequent first, then by name
    user, value, share = user[order], value[order], share[order]
    top = np.arange(len(user)) - np.searchsorted(user, user) < TOP_N  # rank within the user's rows
    offsets = pa.array(np.concatenate([[0], np.cumsum(np.bincount(user[top], minlength=n_users))]), pa.int32())
    # the few names, then one index per row: pa.array of millions of numpy strings comes back chunked
    names = pa.ListArray.from_arrays(offsets, pa.array(labels, pa.string()).take(pa.array(value[top])))
    shares = pa.ListArray.from_arrays(offsets, pa.array(share[top], pa.float32()))
    return pd.Series(pd.arrays.ArrowExtensionArray(names)), pd.Series(pd.arrays.ArrowExtensionArray(shares))


def _price_bands(codes: np.ndarray, at: np.ndarray, catalogue: np.ndarray, n_users: int) -> pd.Series:
    """``low`` / ``mid`` / ``high`` per user: the median price of their distinct catalogue items
    (``at``: catalogue row per event, -1: unknown; ``catalogue``: price per row, NaN: none) against
    the catalogue's price tertiles; null without a price."""
    known = catalogue[~np.isnan(catalogue)]
    pairs = pd.DataFrame({"user": codes, "row": at})
    pairs = pairs[pairs["row"] >= 0].drop_duplicates()
    median = pd.Series(catalogue[pairs["row"].to_numpy()]).groupby(pairs["user"].to_numpy()).median()
    median = median.reindex(range(n_users)).to_numpy()
    if len(known) == 0:
        return pd.Series([None] * n_users, dtype="str")
    low, high = np.quantile(known, [1 / 3, 2 / 3])
    band = np.select([median <= low, median <= high], schema.PRICE_BANDS[:2], default=schema.PRICE_BANDS[2])
    return pd.Series(band, dtype="str").where(~np.isnan(median))


def _utc_micros(timestamps: pd.Series) -> np.ndarray:
    """``(n,)`` int64 microseconds since the epoch (UTC) of timestamps, naive ones taken as UTC."""
    utc = pd.to_datetime(timestamps, utc=True).dt.tz_localize(None)
    micros: np.ndarray = utc.to_numpy(dtype="datetime64[us]").astype(np.int64)
    return micros
