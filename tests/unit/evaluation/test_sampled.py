"""Protocol 7c: the held-out item against uniformly sampled negatives, with hand-computed cases."""

import numpy as np
import pandas as pd
import pytest
import torch

from recsys_lib import schema
from recsys_lib.config import ModelConfig
from recsys_lib.evaluation import evaluate_sampled
from recsys_lib.evaluation.evaluate import evaluation_history
from recsys_lib.evaluation.sampled import candidate_lists, ranked_lists, sample_negatives
from recsys_lib.features import FeatureSet
from recsys_lib.features.interactions import PAIRS_DTYPES
from recsys_lib.models.base import Recommender


def leave_one_out(histories: list[list[int]], targets: list[int], n_items: int) -> FeatureSet:
    """User u has ``histories[u]`` in train and ``targets[u]`` as their only test item."""

    def split(rows: list[tuple[int, int]]) -> pd.DataFrame:
        users, items = zip(*rows, strict=True) if rows else ((), ())
        frame = {schema.USER_IDX: users, schema.ITEM_IDX: items, schema.WEIGHT: 1.0}
        return pd.DataFrame({**frame, schema.TIMESTAMP: pd.Timestamp("2024-01-01", tz="UTC")}).astype(PAIRS_DTYPES)

    return FeatureSet(
        user_ids=np.array([f"u{u}" for u in range(len(histories))], dtype=object),
        item_ids=np.array([f"i{i}" for i in range(n_items)], dtype=object),
        items=pd.DataFrame({schema.ITEM_IDX: range(n_items), schema.AVAILABLE: True}),
        train=split([(u, i) for u, items in enumerate(histories) for i in items]),
        validation=split([]),
        test=split(list(enumerate(targets))),
    )


class TableScores(Recommender):
    """User u scores item i as ``table[u, i]``; records the users of each score_users call."""

    name = "table"

    def __init__(self, table: np.ndarray):
        super().__init__(*table.shape, ModelConfig())
        self.table = torch.as_tensor(table, dtype=torch.float32)
        self.calls: list[list[int]] = []

    def fit(self, features, train, on_epoch_end=None):
        return self

    def score_users(self, user_idx: torch.Tensor, history=None) -> torch.Tensor:
        self.calls.append(user_idx.tolist())
        return self.table[user_idx]

    def state(self):
        return {"table": self.table}

    @classmethod
    def from_state(cls, n_users, n_items, config, state):
        return cls(state["table"].numpy())


@pytest.fixture
def catalogue() -> FeatureSet:
    """6 users, 300 items: 5 random history items each and one unseen target (item 10 * u + 7)."""
    rng = np.random.default_rng(42)
    targets = [10 * u + 7 for u in range(6)]
    histories = [rng.choice(np.setdiff1d(np.arange(300), t), 5, replace=False).tolist() for t in targets]
    return leave_one_out(histories, targets, 300)


def target_table(features: FeatureSet, target_score: float, other_score: float = 0.0) -> np.ndarray:
    table = np.full((features.n_users, features.n_items), other_score, dtype=np.float32)
    table[features.test[schema.USER_IDX], features.test[schema.ITEM_IDX]] = target_score
    return table


def test_sample_negatives_are_distinct_eligible_items():
    excluded = np.array([5, 2, 9, 2])  # unsorted, with a repeat
    for seed in range(50):
        drawn = sample_negatives(excluded, 12, 4, np.random.default_rng(seed))
        assert len(drawn) == 4 and len(set(drawn.tolist())) == 4
        assert set(drawn.tolist()) <= set(range(12)) - {2, 5, 9}


def test_sample_negatives_take_every_eligible_item_when_too_few():
    drawn = sample_negatives(np.array([0, 1, 4, 5]), 6, 100, np.random.default_rng(0))
    assert sorted(drawn.tolist()) == [2, 3]
    assert sample_negatives(np.arange(6), 6, 100, np.random.default_rng(0)).tolist() == []


def test_sample_negatives_are_uniform_over_eligible_items():
    rng = np.random.default_rng(0)
    drawn = np.concatenate([sample_negatives(np.array([0, 3, 4, 9]), 10, 3, rng) for _ in range(12_000)])
    counts = np.bincount(drawn, minlength=10)
    assert counts[[0, 3, 4, 9]].sum() == 0
    assert counts[[1, 2, 5, 6, 7, 8]] == pytest.approx(np.full(6, 6_000), rel=0.05)  # 12000 * 3 / 6 each


def test_candidate_lists_put_the_target_first_and_avoid_history(features):
    # u0: history {0, 1}, relevant {4, 5}: one case per relevant item, negatives from {2, 3} only
    history = evaluation_history(features, "test")
    relevant = [np.array([4, 5])]
    rows, candidates = candidate_lists(np.array([0]), relevant, history, 3, np.random.default_rng(0))
    assert rows.tolist() == [0, 0]
    assert candidates[:, 0].tolist() == [4, 5]
    assert [sorted(c[1:3].tolist()) for c in candidates] == [[2, 3], [2, 3]]
    assert (candidates[:, 3] == -1).all()  # padding where only two items are eligible


def test_candidate_lists_draw_n_negatives_outside_each_users_history(catalogue):
    history = evaluation_history(catalogue, "test")
    users = np.arange(6)
    targets = [np.array([10 * u + 7]) for u in users]
    rows, candidates = candidate_lists(users, targets, history, 100, np.random.default_rng(0))
    assert candidates.shape == (6, 101) and (candidates >= 0).all()
    for row, cand in zip(rows, candidates, strict=True):
        negatives = set(cand[1:].tolist())
        assert len(negatives) == 100
        assert not negatives & (set(history.of(row).tolist()) | {10 * row + 7})


def test_rank_three_is_hand_computed():
    # one user, history {0}, target 7 against all six eligible items: 1 and 2 score above it
    features = leave_one_out([[0]], [7], 8)
    model = TableScores(np.array([[0.0, 10, 9, 1, 2, 3, 4, 5]]))
    m = evaluate_sampled(model, features, ks=(1, 2, 3, 5))
    assert m["hr_at_2"] == 0.0 and m["hr_at_3"] == 1.0
    assert m["ndcg_at_3"] == pytest.approx(1 / np.log2(4))
    assert m["ndcg_at_5"] == pytest.approx(0.5)
    assert m["mrr_at_5"] == pytest.approx(1 / 3)
    assert m["recall_at_5"] == 1.0 and m["recall_at_2"] == 0.0
    assert m["n_users_evaluated"] == 1.0
    assert not any(name.startswith("coverage") for name in m)


def test_ties_count_against_the_target():
    features = leave_one_out([[0]], [7], 8)
    model = TableScores(np.array([[0.0, 1, 1, 1, 1, 1, 5, 5]]))  # item 6 ties the target
    m = evaluate_sampled(model, features, ks=(1, 2))
    assert m["hr_at_1"] == 0.0 and m["hr_at_2"] == 1.0


def test_each_relevant_item_is_its_own_case(features, fixed_scores):
    # u0 (the only evaluable user): target 4 (score 2) is beaten by 2 (score 3), target 5 (score 7) by none
    m = evaluate_sampled(fixed_scores([9.0, 8.0, 3.0, 1.0, 2.0, 7.0]), features, ks=(1, 2))
    assert m["hr_at_1"] == pytest.approx(0.5)
    assert m["ndcg_at_2"] == pytest.approx((1 + 1 / np.log2(3)) / 2)
    assert m["n_users_evaluated"] == 1.0


def test_constant_scores_get_zero(catalogue):
    m = evaluate_sampled(TableScores(np.ones((6, 300))), catalogue, ks=(1, 10, 100))
    assert all(value == 0.0 for name, value in m.items() if name != "n_users_evaluated")


def test_target_scored_highest_gets_one_and_lowest_ranks_last(catalogue):
    best = evaluate_sampled(TableScores(target_table(catalogue, 1.0)), catalogue, ks=(1, 10))
    assert all(value == 1.0 for name, value in best.items() if name != "n_users_evaluated")
    assert best["n_users_evaluated"] == 6.0
    worst = evaluate_sampled(TableScores(target_table(catalogue, -1.0)), catalogue, ks=(100, 101))
    assert worst["hr_at_100"] == 0.0 and worst["hr_at_101"] == 1.0  # rank 101 of 1 + 100 candidates


def test_deterministic_under_the_seed_whatever_the_chunk_size(catalogue):
    table = np.random.default_rng(1).random((6, 300))
    whole = evaluate_sampled(TableScores(table), catalogue, ks=(5, 10, 50), seed=3)
    chunked_model = TableScores(table)
    chunked = evaluate_sampled(chunked_model, catalogue, ks=(5, 10, 50), seed=3, chunk_size=4)
    assert chunked == whole
    assert chunked_model.calls == [[0, 1, 2, 3], [4, 5]]
    history = evaluation_history(catalogue, "test")
    targets = [np.array([10 * u + 7]) for u in range(6)]
    draws = [candidate_lists(np.arange(6), targets, history, 100, np.random.default_rng(s))[1] for s in (0, 0, 1)]
    assert np.array_equal(draws[0], draws[1]) and not np.array_equal(draws[0], draws[2])


def test_ranked_lists_place_the_target_at_its_rank():
    lists = ranked_lists(np.array([0, 2, 5]), 4)
    assert lists.tolist() == [[0, 2, 3, 4], [1, 2, 0, 4], [1, 2, 3, 4]]


def test_bad_arguments_are_rejected(catalogue):
    model = TableScores(np.ones((6, 300)))
    with pytest.raises(ValueError, match="n_negatives"):
        evaluate_sampled(model, catalogue, n_negatives=-1)
    with pytest.raises(ValueError, match="chunk_size"):
        evaluate_sampled(model, catalogue, chunk_size=0)
    with pytest.raises(ValueError, match="validation"):
        evaluate_sampled(model, catalogue, split="validation")
