"""Buy-again: each shopper's likely re-orders, from their own purchase history alone.

A consumable is bought again about one typical interval after the last purchase. For a (user,
item) pair bought on ``days`` distinct days, the last ``age`` days before the data's end, with the
item's typical repurchase interval ``interval`` (the median, over users who bought it on two days
or more, of their mean gap between purchase days; the median over all items where an item has no
repeat buyer), the score is

    log(1 + days) * exp(-timing * |ln((age + 1) / (interval + 1))|)

highest for items a shopper buys habitually, when about one interval has passed since they last
did; ``timing`` (``recommend.buy_again_timing``) weighs that second factor: 0 ranks by purchase
days alone (the "own most frequent purchases" baseline, ties to the most recent), 1 lets an item
just bought score low. Pure: frames in, arrays out; ``as_of`` is passed, never read from the clock.

:func:`reorders` is the ``buy_again`` list the export publishes and the live service's
``GET /buy-again`` answers with: one function, so both list the same.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys_lib import schema
from recsys_lib.features import FeatureSet
from recsys_lib.serving.rules import SEPARATE, ListRules

DAY_US = 86_400 * 1_000_000
FALLBACK_INTERVAL_DAYS = 30.0  # when no item in the data was ever bought on two days


def item_intervals(purchases: pd.DataFrame, n_items: int) -> np.ndarray:
    """(n_items,) float64 typical days between two purchases of each item (see the module)."""
    repeat = purchases[purchases["days"] >= 2]
    gaps = (
        (repeat["last"].array.asi8 - repeat["first"].array.asi8) / DAY_US / (repeat["days"].to_numpy() - 1)
        if len(repeat)
        else np.empty(0)
    )
    overall = float(np.median(gaps)) if len(gaps) else FALLBACK_INTERVAL_DAYS
    out = np.full(n_items, overall, dtype=np.float64)
    if len(gaps):
        median = pd.Series(gaps).groupby(repeat[schema.ITEM_IDX].to_numpy()).median()
        out[median.index.to_numpy(np.int64)] = median.to_numpy()
    return out


def buy_again_scores(purchases: pd.DataFrame, n_items: int, as_of: pd.Timestamp, timing: float = 1.0) -> np.ndarray:
    """(len(purchases),) float64 score of each purchased (user, item) pair at ``as_of``; with
    ``timing`` 0 equal purchase days tie, and the caller's tie-break (recency) decides."""
    if purchases.empty:
        return np.empty(0)
    interval = item_intervals(purchases, n_items)[purchases[schema.ITEM_IDX].to_numpy(np.int64)]
    age = np.maximum((as_of.value // 1000 - purchases["last"].array.asi8) / DAY_US, 0.0)
    due = np.exp(-timing * np.abs(np.log((age + 1.0) / (interval + 1.0))))
    scores: np.ndarray = np.log1p(purchases["days"].to_numpy(np.float64)) * due
    return scores


def buy_again(
    purchases: pd.DataFrame,
    n_items: int,
    as_of: pd.Timestamp,
    eligible: np.ndarray,
    k: int,
    timing: float,
) -> pd.DataFrame:
    """Each buyer's ``k`` best re-orders among ``eligible`` items (bool (n_items,)): user_idx,
    rank (1-based), item_idx, score, purchases, last; best first (ties: the more recent last
    purchase, then the lower item index)."""
    bought = purchases[np.asarray(eligible, dtype=bool)[purchases[schema.ITEM_IDX].to_numpy(np.int64)]]
    scored = bought.assign(**{schema.SCORE: buy_again_scores(bought, n_items, as_of, timing)})
    scored = scored.sort_values(
        [schema.USER_IDX, schema.SCORE, "last", schema.ITEM_IDX], ascending=[True, False, False, True]
    )
    scored[schema.RANK] = scored.groupby(schema.USER_IDX).cumcount() + 1
    top = scored[scored[schema.RANK] <= k]
    return top[[schema.USER_IDX, schema.RANK, schema.ITEM_IDX, schema.SCORE, "purchases", "last"]].reset_index(
        drop=True
    )


def reorders(features: FeatureSet, rules: ListRules | None, policy: int = SEPARATE) -> pd.DataFrame | None:
    """Every buyer's likeliest re-orders of the items whose repeat policy in ``rules`` (over
    features' items) is ``policy``: :data:`~recsys_lib.serving.rules.SEPARATE` for the
    ``buy_again`` list, :data:`~recsys_lib.serving.rules.ALLOW` for the re-orders
    ``recommend.buy_again_share`` places in the list. :func:`buy_again` over those items, available
    and not blocked by a rule, as of the features' newest interaction, ``rules.buy_again_k`` per
    buyer scored with ``rules.buy_again_timing``; rows in features' index spaces, by user then rank
    (empty without purchases). None when no item has that policy."""
    if rules is None or rules.repeat is None or not (rules.repeat == policy).any():
        return None
    eligible = (rules.repeat == policy) & ~rules.blocked
    eligible[features.unavailable_items()] = False
    as_of = features.data_end()
    if as_of is None:  # no interaction, so no purchase either: an empty list
        as_of = pd.Timestamp(0, tz="UTC")
    return buy_again(features.purchases, features.n_items, as_of, eligible, rules.buy_again_k, rules.buy_again_timing)
