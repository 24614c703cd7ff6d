"""Business rules on a list, compiled once against the catalogue: which items may appear, which
get boosted, how many of one category a list may hold, which come first.

:func:`compile_rules` turns ``recommend.*`` settings (:class:`~recsys_lib.config.RecommendConfig`)
and the catalogue into :class:`ListRules` over an item index space; the functions below apply them
to candidate lists, best first. They are what the batch export and the live service share (through
:class:`~recsys_lib.serving.ranker.Ranker`), so a rule means the same thing in both.

* **filters** (categories, brands, price band, blocked items): the items are never candidates;
* **boost** of new arrivals: a boosted item's score ``s`` becomes ``s * f`` when ``s >= 0`` and
  ``s / f`` when negative, an increasing function, so the boosted items keep their order among
  themselves and a ranking can be computed exactly by merging the best boosted and the best other
  items (:func:`merge_boosted`);
* **at most M per category**: the greedy walk down the ranked candidates (:func:`cap_per_category`);
  it equals the walk over the whole catalogue as long as the candidates yield k picks;
* **pins**: pinned items first, in their order, unless excluded for that user (:func:`pin`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recsys_lib import schema
from recsys_lib.config import RecommendConfig
from recsys_lib.errors import ConfigError
from recsys_lib.features import FeatureSet

NO_CATEGORY = -1
EXCLUDE, ALLOW, SEPARATE = 0, 1, 2  # repeat purchase policies, as item codes
_POLICY_CODES = {"exclude": EXCLUDE, "allow": ALLOW, "separate": SEPARATE}


@dataclass(frozen=True)
class ListRules:
    """Rules over ``n_items`` items: ``blocked`` (bool, never listed), ``boosted`` (bool) and its
    ``boost`` factor, ``category`` (int codes, -1 for none) with ``max_per_category``, and
    ``pinned`` item indices in order."""

    blocked: np.ndarray
    boosted: np.ndarray
    boost: float = 1.0
    category: np.ndarray | None = None
    max_per_category: int | None = None
    pinned: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    diversity: float | None = None
    """MMR's lambda (None: off); similarity by ``similar_by``: ``vectors`` or ``categories``."""
    similar_by: str = "auto"
    repeat: np.ndarray | None = None
    """Per item, what happens once a shopper bought it (``recommend.repeat_purchases`` and its
    per-category overrides): :data:`EXCLUDE`, :data:`ALLOW` or :data:`SEPARATE` codes; None: all
    excluded. Read where the exclusions are built (the scorer), not by the ranking."""
    buy_again_k: int = 10
    """Re-orders per shopper in a ``buy_again`` list (``recommend.buy_again_k``)."""
    buy_again_timing: float = 0.0
    """The repurchase score's timing weight (``recommend.buy_again_timing``)."""
    buy_again_share: float = 0.0
    """Share of a list's places for re-orders allowed back (``recommend.buy_again_share``; see
    :func:`interleave_reorders`)."""

    @classmethod
    def none(cls, n_items: int) -> ListRules:
        """No rule: every item may appear, nothing boosted, capped or pinned."""
        return cls(np.zeros(n_items, dtype=bool), np.zeros(n_items, dtype=bool))

    @property
    def n_items(self) -> int:
        """Items the rules cover: the catalogue size of the index space they were built for."""
        return len(self.blocked)

    @property
    def boosts(self) -> bool:
        """Whether any item's score is scaled (a boost other than 1 and at least one boosted item)."""
        return self.boost != 1.0 and bool(self.boosted.any())

    @property
    def caps(self) -> bool:
        """Whether lists are capped per category (a cap and item categories both present)."""
        return self.max_per_category is not None and self.category is not None

    @property
    def diversifies(self) -> bool:
        """Whether MMR re-ranks the lists (a lambda below 1; 1 would rank by relevance alone)."""
        return self.diversity is not None and self.diversity < 1.0

    def remap(self, item_map: np.ndarray, n_items: int) -> ListRules:
        """The same rules over another index space: ``item_map[i]`` is this space's item ``i`` there
        (-1: absent). Items of the other space that this one does not know are blocked (the
        catalogue has nothing to say about them, so no rule could admit them)."""
        item_map = np.asarray(item_map, dtype=np.int64)
        here = np.flatnonzero(item_map >= 0)
        there = item_map[here]
        blocked = np.ones(n_items, dtype=bool)
        blocked[there] = self.blocked[here]
        boosted = np.zeros(n_items, dtype=bool)
        boosted[there] = self.boosted[here]
        category = None
        if self.category is not None:
            category = np.full(n_items, NO_CATEGORY, dtype=np.int64)
            category[there] = self.category[here]
        pinned = item_map[self.pinned]
        return ListRules(
            blocked,
            boosted,
            self.boost,
            category,
            self.max_per_category,
            pinned[pinned >= 0],
            self.diversity,
            self.similar_by,
            buy_again_k=self.buy_again_k,
            buy_again_timing=self.buy_again_timing,
            buy_again_share=self.buy_again_share,
        )


def _codes(values: pd.Series, names: tuple[str, ...], key: str) -> np.ndarray:
    """Rows of ``values`` in ``names``; ConfigError naming ``key`` for a name no row has."""
    present = set(values.dropna().astype(str))
    unknown = sorted(set(names) - present)
    if unknown:
        known = sorted(present)
        raise ConfigError(f"{key} names {unknown}, which no catalogue item has; e.g. {known[:8]}")
    matches: np.ndarray = values.astype(str).isin(names).to_numpy() & values.notna().to_numpy()
    return matches


def compile_rules(settings: RecommendConfig, catalogue: pd.DataFrame, age_days: np.ndarray | None = None) -> ListRules:
    """``settings`` over the items of ``catalogue`` (one row per item index, in order, with
    ``item_id``, ``category``, ``brand``, ``price``; a FeatureSet's ``items``). ``age_days``: days
    since each item was first seen (needed when ``new_arrival_days`` is set).

    Raises ConfigError naming the key when a rule names a category, brand or item the catalogue
    does not have (a typo would otherwise silently filter nothing, or everything).
    """
    n = len(catalogue)
    blocked = np.zeros(n, dtype=bool)
    for column, only_key, exclude_key in (
        (schema.CATEGORY, "only_categories", "exclude_categories"),
        (schema.BRAND, "only_brands", "exclude_brands"),
    ):
        only, exclude = getattr(settings, only_key), getattr(settings, exclude_key)
        if only:
            blocked |= ~_codes(catalogue[column], only, f"recommend.{only_key}")
        if exclude:
            blocked |= _codes(catalogue[column], exclude, f"recommend.{exclude_key}")
    price = catalogue[schema.PRICE].astype("float64").to_numpy()
    with np.errstate(invalid="ignore"):
        if settings.min_price is not None:
            blocked |= price < settings.min_price  # nan (no price) compares False: kept
        if settings.max_price is not None:
            blocked |= price > settings.max_price
    ids = catalogue[schema.ITEM_ID].astype(str)
    if settings.blocked_items:
        blocked |= _codes(ids, settings.blocked_items, "recommend.blocked_items")
    pinned = np.empty(0, dtype=np.int64)
    if settings.pinned_items:
        _codes(ids, settings.pinned_items, "recommend.pinned_items")
        row = pd.Index(ids)
        pinned = np.asarray(row.get_indexer(list(settings.pinned_items)), dtype=np.int64)
    boosted = np.zeros(n, dtype=bool)
    if settings.new_arrival_days is not None:
        if age_days is None:
            raise ConfigError("recommend.new_arrival_days needs each item's first-seen date; none was given")
        boosted = np.asarray(age_days) <= settings.new_arrival_days
    repeat = None
    if settings.repeat_purchases != "exclude" or settings.repeat_purchases_by_category:
        repeat = np.full(n, _POLICY_CODES[settings.repeat_purchases], dtype=np.int8)
        for name, policy in settings.repeat_purchases_by_category.items():
            rows = _codes(catalogue[schema.CATEGORY], (name,), "recommend.repeat_purchases_by_category")
            repeat[rows] = _POLICY_CODES[policy]
    category = None
    if settings.max_per_category is not None or settings.diversity is not None:
        codes, _ = pd.factorize(catalogue[schema.CATEGORY], use_na_sentinel=True)
        category = codes.astype(np.int64)  # -1 for no category
    return ListRules(
        blocked,
        boosted,
        settings.new_arrival_boost,
        category,
        settings.max_per_category,
        pinned,
        settings.diversity,
        settings.diversity_by,
        repeat,
        settings.buy_again_k,
        settings.buy_again_timing,
        settings.buy_again_share,
    )


def rules_for(settings: RecommendConfig, features: FeatureSet) -> ListRules | None:
    """The shop's ``recommend.*`` rules over ``features``' items (new arrivals aged by
    :meth:`FeatureSet.item_age_days`); None when no rule is set (lists as the model ranks them)."""
    if not settings.active:
        return None
    age = features.item_age_days() if settings.new_arrival_days is not None else None
    return compile_rules(settings, features.items, age)


def boost_scores(scores: np.ndarray, factor: float) -> np.ndarray:
    """``scores * factor`` where non-negative, ``scores / factor`` where negative (-inf stays)."""
    scores = np.asarray(scores, dtype=np.float32)
    return np.where(scores >= 0, scores * np.float32(factor), scores / np.float32(factor)).astype(np.float32)


def merge_boosted(
    plain: tuple[np.ndarray, np.ndarray], boosted: tuple[np.ndarray, np.ndarray], factor: float, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` of two ranked candidate lists per row (items -1 / scores -inf padded), the
    second's scores boosted first. Each input must be its group's exact top k; the output is then
    the exact top k of the whole catalogue under the boosted scores (ties to the first list)."""
    items = np.concatenate([plain[0], boosted[0]], axis=1)
    scores = np.concatenate([plain[1], boost_scores(boosted[1], factor)], axis=1)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(items, order, axis=1), np.take_along_axis(scores, order, axis=1)


def _compact(items: np.ndarray, scores: np.ndarray, keep: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's kept entries, in order, in the first slots of (n, k) (padding -1 / -inf)."""
    n = len(items)
    slot = np.cumsum(keep, axis=1) - 1  # (n, c) the slot each kept entry goes to
    take = keep & (slot < k)
    rows = np.nonzero(take)[0]
    out_items = np.full((n, k), -1, dtype=np.int64)
    out_scores = np.full((n, k), -np.inf, dtype=np.float32)
    out_items[rows, slot[take]] = items[take]
    out_scores[rows, slot[take]] = scores[take]
    return out_items, out_scores


def cap_per_category(
    items: np.ndarray, scores: np.ndarray, category: np.ndarray, limit: int, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Walk each row's ranked candidates (n, c) keeping an item unless ``limit`` items of its
    category are already kept (no category: never capped), up to ``k``. Returns ``(items,
    scores)`` (n, k) padded -1 / -inf and ``full`` (n,) bool: whether the row found k items (if not,
    more candidates might complete it). Vectorised: an item's rank within its (row, category)."""
    n, c = items.shape
    valid = items >= 0
    codes = np.where(valid, category[np.maximum(items, 0)], NO_CATEGORY).ravel()  # (n * c,)
    row = np.repeat(np.arange(n), c)
    order = np.lexsort((np.tile(np.arange(c), n), codes, row))  # by row, category, then rank
    group_start = np.r_[True, (row[order][1:] != row[order][:-1]) | (codes[order][1:] != codes[order][:-1])]
    position = np.arange(len(order))
    within = position - np.maximum.accumulate(np.where(group_start, position, 0))  # rank within the group
    occurrence = np.empty_like(within)
    occurrence[order] = within
    keep = (valid.ravel() & ((codes == NO_CATEGORY) | (occurrence < limit))).reshape(n, c)
    out_items, out_scores = _compact(items, scores, keep, k)
    return out_items, out_scores, keep.sum(axis=1) >= k


def category_similarity(category: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``similarity(candidates (n, c), chosen (n,)) -> (n, c)``: 1 for the same category, else 0
    (items without a category are like no other)."""

    def similarity(candidates: np.ndarray, chosen: np.ndarray) -> np.ndarray:
        mine, theirs = category[np.maximum(candidates, 0)], category[np.maximum(chosen, 0)][:, None]
        same: np.ndarray = ((mine == theirs) & (mine != NO_CATEGORY)).astype(np.float32)
        return same

    return similarity


def vector_similarity(vectors: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``similarity(candidates (n, c), chosen (n,)) -> (n, c)``: cosine of the item vectors."""
    unit = (vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def similarity(candidates: np.ndarray, chosen: np.ndarray) -> np.ndarray:
        cosine: np.ndarray = np.einsum("ncd,nd->nc", unit[np.maximum(candidates, 0)], unit[np.maximum(chosen, 0)])
        return cosine

    return similarity


def mmr(
    items: np.ndarray,
    scores: np.ndarray,
    similarity: Callable[[np.ndarray, np.ndarray], np.ndarray],
    lam: float,
    take: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Maximal marginal relevance over each row's ranked candidates (n, c; -1 padded): ``take``
    times, pick the candidate maximising ``lam * relevance - (1 - lam) * (largest similarity to
    those picked)``, relevance being the score min-max scaled to [0, 1] within the row (ties: the
    better-ranked). Returns the picks in order with their original scores, (n, take) padded."""
    n, c = items.shape
    valid = items >= 0
    low = np.where(valid, scores, np.inf).min(axis=1, initial=np.inf)
    high = np.where(valid, scores, -np.inf).max(axis=1, initial=-np.inf)
    low, high = np.where(np.isfinite(low), low, 0.0), np.where(np.isfinite(high), high, 0.0)  # rows without any
    spread = np.where(high > low, high - low, 1.0)
    relevance = np.where(valid, (scores - low[:, None]) / spread[:, None], -np.inf).astype(np.float32)
    closest = np.zeros((n, c), dtype=np.float32)  # each candidate's largest similarity to the picks
    open_ = valid.copy()
    rows = np.arange(n)
    out_items = np.full((n, take), -1, dtype=np.int64)
    out_scores = np.full((n, take), -np.inf, dtype=np.float32)
    for step in range(min(take, c)):
        gain = np.where(open_, lam * relevance - (1 - lam) * closest, -np.inf)
        best = np.argmax(gain, axis=1)  # the first of equal gains: the better-ranked candidate
        found = open_[rows, best]
        out_items[found, step] = items[rows, best][found]
        out_scores[found, step] = scores[rows, best][found]
        open_[rows, best] = False
        closest = np.maximum(closest, similarity(items, items[rows, best]))
    return out_items, out_scores


def pin(
    items: np.ndarray, scores: np.ndarray, pinned: np.ndarray, pinned_scores: np.ndarray, allowed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Put ``pinned`` items first in each row (``allowed`` (n, len(pinned)) bool: whether each may
    appear for that row), with ``pinned_scores`` (n, len(pinned)), then the row's items without
    them, cut back to the row length."""
    n, k = items.shape
    shown = (items[:, :, None] == pinned[None, None, :]) & allowed[:, None, :]  # (n, k, p)
    rest = (items >= 0) & ~shown.any(axis=2)
    merged = np.concatenate([np.broadcast_to(pinned, (n, len(pinned))), items], axis=1)
    values = np.concatenate([pinned_scores.astype(np.float32), scores], axis=1)
    return _compact(merged, values, np.concatenate([allowed, rest], axis=1), k)


def reorder_places(share: float, k: int) -> np.ndarray:
    """(k,) bool: which places of a list (after its pinned items) go to re-orders when ``share`` of
    them should, spread evenly from the top: place p (1-based) does when the re-orders placed so far
    fall short of ``round(share x p)`` (0.3 of 10: places 2, 5, 9; 0.5: 1, 3, 5, ...; 1: all)."""
    want = np.floor(share * np.arange(1, k + 1) + 0.5 + 1e-9).astype(np.int64)  # halves round up, not by float noise
    places: np.ndarray = np.diff(want, prepend=0) > 0
    return places


def interleave_reorders(
    items: np.ndarray,
    scores: np.ndarray,
    reorders: list[tuple[np.ndarray, np.ndarray]],
    share: float,
    k: int,
    rules: ListRules,
    excluded: list[set[int]],
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's list of ``k``: its pinned items first (as ``items`` has them), then the places
    :func:`reorder_places` gives re-orders taken in order from ``reorders[row]`` (items, scores:
    the shopper's likeliest re-orders, best first) and the other places from the rest of ``items``
    (the model's list, fetched deeper than ``k``); an item listed once is skipped after, as is one
    in ``excluded[row]`` or blocked by ``rules``, and one that would pass ``rules``' category cap.
    When either source runs out the other fills the list. ``items``/``scores`` (n, >= k), model
    index space, -1 / -inf padded; returns (n, k) of the same."""
    n = items.shape[0]
    out_items = np.full((n, k), -1, dtype=np.int64)
    out_scores = np.full((n, k), -np.inf, dtype=np.float32)
    places = reorder_places(share, k)
    pinned = set(rules.pinned.tolist())
    for row in range(n):
        again_items, again_scores = np.asarray(reorders[row][0], dtype=np.int64), reorders[row][1]
        keep = np.fromiter((int(i) not in excluded[row] for i in again_items), bool, len(again_items))
        keep &= ~rules.blocked[again_items]
        valid = items[row] >= 0
        sources = {
            "model": list(zip(items[row][valid].tolist(), scores[row][valid].tolist(), strict=True)),
            "again": list(zip(again_items[keep].tolist(), again_scores[keep].tolist(), strict=True)),
        }
        filling = _Filling(k, rules)
        cursor = {"model": 0, "again": 0}
        model = sources["model"]
        while cursor["model"] < len(model) and model[cursor["model"]][0] in pinned and not filling.full:
            filling.add(*model[cursor["model"]], capped=False)  # the ranker's pins: first, outside the caps
            cursor["model"] += 1
        for place in range(k):
            if filling.full:
                break
            for name in ("again", "model") if places[place] else ("model", "again"):
                cursor[name], took = filling.take(sources[name], cursor[name])
                if took:
                    break
            else:
                break  # neither source has an item left that may be listed
        out_items[row, : len(filling.items)] = filling.items
        out_scores[row, : len(filling.items)] = filling.scores
    return out_items, out_scores


class _Filling:
    """One list being filled: each item once, at most ``rules.max_per_category`` per category."""

    def __init__(self, k: int, rules: ListRules):
        self.k = k
        self.category, self.cap = (rules.category, rules.max_per_category) if rules.caps else (None, None)
        self.items: list[int] = []
        self.scores: list[float] = []
        self._seen: set[int] = set()
        self._per_category: dict[int, int] = {}

    @property
    def full(self) -> bool:
        return len(self.items) >= self.k

    def fits(self, item: int) -> bool:
        """Whether ``item`` may join: not listed yet, and its category (if capped) below the cap."""
        if item in self._seen:
            return False
        if self.category is None or self.cap is None or self.category[item] < 0:
            return True
        return self._per_category.get(int(self.category[item]), 0) < self.cap

    def add(self, item: int, score: float, capped: bool = True) -> None:
        """List ``item``; ``capped``: count it towards its category's cap (pinned items do not)."""
        self.items.append(item)
        self.scores.append(score)
        self._seen.add(item)
        if capped and self.category is not None and self.category[item] >= 0:
            code = int(self.category[item])
            self._per_category[code] = self._per_category.get(code, 0) + 1

    def take(self, source: list[tuple[int, float]], start: int) -> tuple[int, bool]:
        """Add the first item of ``source`` from ``start`` that fits; (the cursor after it, True),
        or (the end, False) when none does."""
        for j in range(start, len(source)):
            if self.fits(source[j][0]):
                self.add(*source[j])
                return j + 1, True
        return len(source), False


def reason_kinds(
    items: np.ndarray,
    reasons: np.ndarray | None,
    model_kind: str,
    cold: np.ndarray,
    rules: ListRules,
    rebought: np.ndarray | None = None,
) -> np.ndarray:
    """(n, k) object array: why each of ``items`` (model item indices, -1 padding) is listed
    (:data:`~recsys_lib.schema.REASON_KINDS`, None for padding or when nothing says): a pinned item
    is a ``rule``; a boosted one a ``new_arrival``; for ``cold`` rows (n,) bool, shoppers the model
    does not know, ``popular``; else the model's kind where it gave a reason (``reasons``, -1 none),
    and ``popular`` for every item of the popularity model; ``rebought`` (n, k) bool marks re-orders
    (``buy_again``)."""
    kinds = np.full(items.shape, None, dtype=object)
    listed = items >= 0
    if reasons is not None:
        kinds[listed & (reasons >= 0)] = model_kind
    if model_kind == schema.POPULAR:
        kinds[listed] = schema.POPULAR
    kinds[listed & np.asarray(cold, dtype=bool)[:, None]] = schema.POPULAR
    safe = np.maximum(items, 0)
    kinds[listed & rules.boosted[safe] & rules.boosts] = schema.NEW_ARRIVAL
    if rebought is not None:
        kinds[listed & rebought] = schema.BUY_AGAIN
    if len(rules.pinned):
        kinds[listed & np.isin(items, rules.pinned)] = schema.RULE
    return kinds
