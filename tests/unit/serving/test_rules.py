"""Business rules on small catalogues whose right answer is known, through both ranking paths
(item vectors and score rows), and the same rules giving the same lists in the export and live."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from recsys_lib import schema
from recsys_lib.config import ModelConfig, RecommendConfig, TrainConfig, load_config
from recsys_lib.errors import ConfigError
from recsys_lib.features import FeatureSet
from recsys_lib.models import create_model
from recsys_lib.serving import ModelBundle
from recsys_lib.serving.live import LiveScorer
from recsys_lib.serving.ranker import Ranker
from recsys_lib.serving.rules import ListRules, boost_scores, compile_rules, interleave_reorders, reorder_places

CATALOGUE = pd.DataFrame(
    {
        schema.ITEM_ID: [f"i{i}" for i in range(6)],
        schema.CATEGORY: ["a", "a", "b", "b", "c", None],
        schema.BRAND: ["x", "y", "x", "y", "x", None],
        schema.PRICE: [1.0, 5.0, 10.0, 20.0, None, 3.0],
    }
)
#: One-dimensional item vectors: a user vector of [1] scores item i at 6 - i (ranked 0..5), [-1] at i - 6.
VECTORS = np.arange(6, 0, -1, dtype=np.float32).reshape(-1, 1)


def _blocked(**settings) -> list[int]:
    return np.flatnonzero(compile_rules(RecommendConfig(**settings), CATALOGUE).blocked).tolist()


def test_filters_block_exactly_the_items_their_rule_names() -> None:
    assert _blocked(exclude_categories=("a",)) == [0, 1]
    assert _blocked(only_categories=("b",)) == [0, 1, 4, 5]  # an item without a category is not "in b"
    assert _blocked(exclude_brands=("x",), blocked_items=("i1",)) == [0, 1, 2, 4]
    assert _blocked(only_brands=("y",)) == [0, 2, 4, 5]
    assert _blocked(min_price=4.0, max_price=15.0) == [0, 3, 5]  # no price (i4): kept
    assert _blocked() == []


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"exclude_categories": ("toys",)}, "recommend.exclude_categories"),
        ({"only_brands": ("z",)}, "recommend.only_brands"),
        ({"pinned_items": ("i9",)}, "recommend.pinned_items"),
        ({"blocked_items": ("i7",)}, "recommend.blocked_items"),
        ({"repeat_purchases_by_category": {"toys": "separate"}}, "recommend.repeat_purchases_by_category"),
    ],
)
def test_a_rule_naming_what_the_catalogue_lacks_fails_naming_the_key(settings: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.") + r" names \[.*\], which no catalogue item has"):
        compile_rules(RecommendConfig(**settings), CATALOGUE)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"recommend.max_per_category": 0}, "recommend.max_per_category"),
        ({"recommend.new_arrival_boost": -1.0}, "recommend.new_arrival_boost"),
        ({"recommend.min_price": 10, "recommend.max_price": 5}, "recommend.min_price"),
        ({"recommend.only_categories": ["a"], "recommend.exclude_categories": ["a"]}, "recommend.only_categories"),
        ({"recommend.new_arrival_boost": 2.0}, "recommend.new_arrival_days"),
        ({"recommend.buy_again_share": 0.3}, "recommend.buy_again_share"),  # without allow: places nothing
        ({"recommend.buy_again_share": 1.5, "recommend.repeat_purchases": "allow"}, "recommend.buy_again_share"),
    ],
)
def test_bad_settings_fail_at_the_boundary_naming_the_key(override: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(overrides=override)


def test_boost_moves_positive_scores_up_and_negative_ones_towards_zero() -> None:
    assert boost_scores(np.array([2.0, -2.0, -np.inf]), 4.0).tolist() == [8.0, -0.5, -np.inf]


def _rank(path: str, rules: ListRules, sign: float, k: int, exclude: list[list[int]] | None = None) -> list[list[int]]:
    """Ranked items of one user per exclude row (default one user), through the vector index,
    through score rows or through one row shared by every user; all must give the same answer."""
    rows = exclude or [[]]
    matrix = sp.csr_matrix(
        (
            np.ones(sum(map(len, rows)), np.float32),
            np.concatenate([r for r in rows] + [[]]).astype(int),
            np.r_[0, np.cumsum([len(r) for r in rows])],
        ),
        shape=(len(rows), 6),
    )
    ranker = Ranker(rules, rules.blocked, VECTORS if path == "vectors" else None)
    if path == "vectors":
        items, _ = ranker.search(np.full((len(rows), 1), sign, dtype=np.float32), k, matrix)
    elif path == "rows":
        items, _ = ranker.rows(torch.from_numpy(sign * np.tile(VECTORS.T, (len(rows), 1))), matrix, k)
    else:  # one row broadcast to every user, as popularity and the cold-start fallback score
        items, _ = ranker.rows(torch.from_numpy(sign * VECTORS[:, 0]).expand(len(rows), -1), matrix, k)
    return items.tolist()


PATHS = ["vectors", "rows", "shared_row"]


def _rules(**settings) -> ListRules:
    return compile_rules(RecommendConfig(**settings), CATALOGUE, age_days=np.array([90, 90, 90, 90, 3, 90]))


@pytest.mark.parametrize("path", PATHS)
def test_without_rules_the_ranking_is_the_plain_one(path: str) -> None:
    assert _rank(path, ListRules.none(6), 1.0, 4) == [[0, 1, 2, 3]]
    assert _rank(path, ListRules.none(6), 1.0, 8) == [[0, 1, 2, 3, 4, 5, -1, -1]]


@pytest.mark.parametrize("path", PATHS)
def test_filters_leave_full_lists_from_what_qualifies(path: str) -> None:
    assert _rank(path, _rules(exclude_categories=("a",)), 1.0, 3) == [[2, 3, 4]]
    assert _rank(path, _rules(max_price=12.0, blocked_items=("i2",)), 1.0, 3) == [[0, 1, 4]]


@pytest.mark.parametrize("path", PATHS)
def test_new_arrivals_are_boosted_exactly(path: str) -> None:
    # i4 (3 days old) scores 2; boosted by 2.6 it scores 5.2: after i0 (6), before i1 (5)
    rules = _rules(new_arrival_days=14, new_arrival_boost=2.6)
    assert _rank(path, rules, 1.0, 4) == [[0, 4, 1, 2]]
    # negative scores: i4 scores -2, boosted to -2 / 2.6 = -0.77, above i5 (-1)
    assert _rank(path, rules, -1.0, 3) == [[4, 5, 3]]
    # a boost below 1 demotes: i4 at 2 * 0.2 = 0.4 falls under i5 (1)
    assert _rank(path, _rules(new_arrival_days=14, new_arrival_boost=0.2), 1.0, 6) == [[0, 1, 2, 3, 5, 4]]


@pytest.mark.parametrize("path", PATHS)
def test_at_most_m_per_category_and_uncategorised_items_uncapped(path: str) -> None:
    rules = _rules(max_per_category=1)
    assert _rank(path, rules, 1.0, 3) == [[0, 2, 4]]
    assert _rank(path, rules, 1.0, 6) == [[0, 2, 4, 5, -1, -1]]  # only 4 qualify: a, b, c and the one without
    assert _rank(path, _rules(max_per_category=2), -1.0, 5) == [[5, 4, 3, 2, 1]]


@pytest.mark.parametrize("path", PATHS)
def test_pinned_items_come_first_unless_the_user_has_them(path: str) -> None:
    rules = _rules(pinned_items=("i5", "i3"))
    assert _rank(path, rules, 1.0, 4, exclude=[[], [5]]) == [[5, 3, 0, 1], [3, 0, 1, 2]]
    both = _rules(pinned_items=("i5",), max_per_category=1, exclude_categories=("c",))
    assert _rank(path, both, 1.0, 3) == [[5, 0, 2]]


@pytest.fixture(scope="module")
def shop(small: FeatureSet) -> tuple[FeatureSet, ModelBundle]:
    model = create_model(ModelConfig(name="mf_bpr", embedding_dim=8), small.n_users, small.n_items)
    model.fit(small, TrainConfig(epochs=2, batch_size=64, seed=3))
    items = small.items.copy()
    items[schema.CATEGORY] = np.array(["a", "b", "c"])[np.arange(small.n_items) % 3]
    return dataclasses.replace(small, items=items), ModelBundle.from_training(model, small)


def test_the_export_and_the_live_service_give_the_same_list_under_the_same_rules(shop) -> None:
    features, bundle = shop
    settings = RecommendConfig(
        exclude_categories=("c",), max_per_category=2, pinned_items=(str(features.item_ids[4]),), diversity=0.7
    )
    rules = compile_rules(settings, features.items)
    scorer = bundle.scorer(features, rules=rules)
    live = LiveScorer(scorer)
    users = np.arange(features.n_users)
    items, _ = scorer.topk(users, 5)
    category = features.items[schema.CATEGORY].to_numpy()
    for row in users:
        listed = items[row][items[row] >= 0]
        assert "c" not in set(category[listed])
        assert max(np.unique(category[listed], return_counts=True)[1]) <= 2 or listed[0] == 4
        got = live.recommend(str(features.user_ids[row]), [], 5)
        assert got.item_ids == features.item_ids[listed].astype(str).tolist()


def _greedy(items: np.ndarray, category: np.ndarray, limit: int, k: int) -> list[int]:
    """The rule as one would write it by hand, for one row."""
    taken: dict[int, int] = {}
    out: list[int] = []
    for item in items:
        if item < 0 or len(out) == k:
            break
        code = int(category[item])
        if code >= 0 and taken.get(code, 0) >= limit:
            continue
        taken[code] = taken.get(code, 0) + 1
        out.append(int(item))
    return out + [-1] * (k - len(out))


def test_the_vectorised_category_cap_is_the_greedy_walk() -> None:
    from recsys_lib.serving.rules import cap_per_category

    rng = np.random.default_rng(0)
    category = rng.integers(-1, 4, size=50)  # -1: no category
    items = np.stack([rng.permutation(50)[:20] for _ in range(200)])
    items[::7, 15:] = -1  # some rows with fewer candidates
    scores = -np.arange(20, dtype=np.float32)[None, :].repeat(200, axis=0)
    for limit, k in ((1, 5), (2, 8), (3, 12)):
        got, _, full = cap_per_category(items, scores, category, limit, k)
        expected = [_greedy(row, category, limit, k) for row in items]
        assert got.tolist() == expected
        assert full.tolist() == [-1 not in row for row in expected]


def test_mmr_trades_relevance_for_items_unlike_those_already_listed() -> None:
    from recsys_lib.serving.rules import category_similarity, mmr

    category = np.array([0, 0, 0, 1, 1, 2])
    items = np.array([[0, 1, 2, 3, 4, 5]])
    scores = np.array([[1.0, 0.9, 0.8, 0.7, 0.6, 0.5]], dtype=np.float32)
    same = category_similarity(category)
    assert mmr(items, scores, same, 1.0, 4)[0].tolist() == [[0, 1, 2, 3]]  # lambda 1: relevance alone
    # lambda 0.5, relevance scaled to [1, .8, .6, .4, .2, 0], gain = .5 rel - .5 max-similarity:
    # pick 0 (.5); then 1: .4-.5, 2: .3-.5, 3: .2, 4: .1, 5: 0 -> 3; then 1: -.1, 2: -.2, 4: .1-.5, 5: 0 -> 5;
    # then 1 (-.1) beats 2 (-.2) and 4 (-.4)
    picked, picked_scores = mmr(items, scores, same, 0.5, 4)
    assert picked.tolist() == [[0, 3, 5, 1]]
    assert picked_scores[0].tolist() == pytest.approx([1.0, 0.7, 0.5, 0.9])  # the model's scores, not the gains
    short = np.array([[4, 3, -1, -1, -1, -1]])
    assert mmr(short, scores, same, 0.5, 3)[0].tolist() == [[4, 3, -1]]


@pytest.mark.parametrize("path", PATHS)
def test_diversity_through_both_ranking_paths(path: str) -> None:
    rules = _rules(diversity=0.3, diversity_by="categories")  # categories a, a, b, b, c, none
    assert _rank(path, rules, 1.0, 3)[0][:2] == [0, 2]  # the second pick leaves category a
    assert _rank(path, _rules(diversity=1.0), 1.0, 3) == [[0, 1, 2]]  # 1: relevance alone


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"max_per_category": 1},
        {"diversity": 0.5, "diversity_by": "categories"},
        {"pinned_items": ("i5", "i1")},
        {"new_arrival_days": 14, "new_arrival_boost": 3.0, "max_per_category": 2, "exclude_categories": ("b",)},
    ],
)
def test_a_row_shared_by_every_user_ranks_as_the_same_rows_one_by_one(settings: dict) -> None:
    """Popularity and the fallback give every user one row: ranked once and read off past each
    user's exclusions, the lists equal ranking each user's own copy (ties to the lower item,
    explicit zeros not excluding, short lists padded)."""
    rng = np.random.default_rng(7)
    rules = _rules(**settings)
    ranker = Ranker(rules, rules.blocked)
    for _ in range(20):
        row = rng.integers(0, 3, 6).astype(np.float32)  # ties everywhere
        exclude = sp.random(30, 6, density=0.4, random_state=rng, format="csr", dtype=np.float32)
        exclude.data[rng.random(exclude.nnz) < 0.2] = 0.0  # stored zeros exclude nothing
        for k in (1, 3, 8):
            shared = ranker.rows(torch.from_numpy(row).expand(30, -1), exclude, k)
            one_by_one = ranker.rows(torch.from_numpy(np.tile(row, (30, 1))), exclude, k)
            np.testing.assert_array_equal(shared[0], one_by_one[0])
            np.testing.assert_array_equal(shared[1], one_by_one[1])


@pytest.mark.parametrize(
    ("share", "places"),
    [(0.0, []), (0.3, [2, 5, 9]), (0.5, [1, 3, 5, 7, 9]), (1.0, list(range(1, 11)))],
)
def test_reorders_take_their_share_of_places_spread_from_the_top(share: float, places: list[int]) -> None:
    assert (np.flatnonzero(reorder_places(share, 10)) + 1).tolist() == places


def _interleaved(model: list[int], again: list[int], share: float, k: int, excluded=(), **settings) -> list[int]:
    """One row: the model's list (scores 10, 9, ...) with the re-orders ``again`` (scores 0.9, 0.8, ...)."""
    rules = compile_rules(RecommendConfig(**settings), CATALOGUE)
    items = np.array([model], dtype=np.int64)
    scores = np.array([[10.0 - j for j in range(len(model))]], dtype=np.float32)
    reorders = [(np.array(again, dtype=np.int64), np.array([0.9 - 0.1 * j for j in range(len(again))], np.float32))]
    out, out_scores = interleave_reorders(items, scores, reorders, share, k, rules, [set(excluded)])
    listed = out[0][out[0] >= 0].tolist()
    by_item = dict(zip(model, scores[0].tolist(), strict=True)) | dict(zip(again, reorders[0][1].tolist(), strict=True))
    assert out_scores[0][: len(listed)].tolist() == pytest.approx([by_item[i] for i in listed])  # each keeps its score
    return listed


def test_reorders_interleave_with_the_models_list_each_item_once() -> None:
    assert _interleaved([2, 3, 4], [0, 1], share=0.5, k=4) == [0, 2, 1, 3]  # places 1 and 3 are re-orders
    assert _interleaved([2, 3, 4], [0, 1], share=1.0, k=4) == [0, 1, 2, 3]  # re-orders first, then the model
    assert _interleaved([0, 3, 4], [0, 1], share=0.5, k=4) == [0, 3, 1, 4]  # the model's 0 is not listed twice
    assert _interleaved([2, 3], [0, 1], share=0.5, k=6) == [0, 2, 1, 3]  # both run out: the list stays short
    assert _interleaved([2, 3, 4, 5], [0], share=1.0, k=4) == [0, 2, 3, 4]  # the model fills what re-orders leave


def test_interleaved_reorders_keep_the_rules() -> None:
    # i5 pinned: the ranker put it first, and it stays first
    assert _interleaved([5, 2, 3], [0, 1], share=0.5, k=4, pinned_items=("i5",)) == [5, 0, 2, 1]
    # at most one of category "a" (i0, i1): the second re-order gives way to the model
    assert _interleaved([2, 3, 4], [0, 1], share=1.0, k=4, max_per_category=1) == [0, 2, 4]
    # a pinned item does not count towards its category's cap (as in the ranker): i1 still fits
    assert _interleaved([0, 2, 3], [1], share=1.0, k=3, pinned_items=("i0",), max_per_category=1) == [0, 1, 2]
    # a re-order placed first is not listed again where the model's list has it
    assert _interleaved([2, 0, 3], [0], share=0.5, k=3) == [0, 2, 3]
    # a blocked re-order, or one the request excludes, is never listed
    assert _interleaved([2, 3, 4], [0, 1], share=1.0, k=3, blocked_items=("i0",)) == [1, 2, 3]
    assert _interleaved([2, 3, 4], [0, 1], share=1.0, k=3, excluded={1}) == [0, 2, 3]
