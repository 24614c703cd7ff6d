import numpy as np
import pytest

from recsys_lib.evaluation import evaluate_recommender, evaluation_users, relevant_items


def test_evaluation_users_need_history_and_split_pairs(features):
    assert evaluation_users(features, "test").tolist() == [0, 1]
    assert evaluation_users(features, "validation").tolist() == []


def test_relevant_items_drop_train_history(features):
    relevant = relevant_items(features, "test", np.array([0, 1, 2]))
    assert [r.tolist() for r in relevant] == [[4, 5], [], []]


def test_with_reorders_every_split_item_is_relevant_history_items_included(features):
    relevant = relevant_items(features, "test", np.array([0, 1, 2]), reorders=True)
    assert [r.tolist() for r in relevant] == [[1, 4, 5], [2], []]  # u0 re-bought 1, u1 re-bought 2


def test_evaluate_ranks_the_catalogue_minus_history(features, fixed_scores):
    # history items 0 and 1 score highest but must be skipped: u0's list becomes 5, 2, 4, 3
    model = fixed_scores([9.0, 8.0, 3.0, 1.0, 2.0, 7.0])
    m = evaluate_recommender(model, features, "test", ks=(1, 3))
    assert m["n_users_evaluated"] == 1  # u1's only test item was seen, u3 has no history
    assert m["hr_at_1"] == pytest.approx(1.0)
    assert m["recall_at_1"] == pytest.approx(0.5)
    assert m["ndcg_at_3"] == pytest.approx((1 + 0.5) / (1 + 1 / np.log2(3)))  # hits at ranks 1 and 3
    assert m["coverage_at_3"] == pytest.approx(3 / 6)


def test_nothing_to_evaluate_is_an_error(features, fixed_scores):
    with pytest.raises(ValueError, match="validation"):
        evaluate_recommender(fixed_scores([0.0] * 6), features, "validation", ks=(1,))
    with pytest.raises(ValueError, match="split must be one of"):
        evaluation_users(features, "holdout")
