import numpy as np
import pytest

from recsys_lib.evaluation import ranking_metrics

# 1 / log2(rank + 1) for ranks 1..3
D1, D2, D3 = 1.0, 1 / np.log2(3), 0.5  # 1, 0.63093, 0.5

RECOMMENDED = np.array(
    [
        [1, 2, 3],  # user A: relevant {2, 5}  -> one hit, at rank 2
        [4, 0, -1],  # user B: relevant {4}    -> hit at rank 1, then padding
        [0, 1, 2],  # user C: relevant {2, 0, 7, 8} -> hits at ranks 1 and 3
    ]
)
RELEVANT = [np.array([2, 5]), np.array([4]), np.array([2, 0, 7, 8])]


def test_metrics_at_3_match_hand_computed_values():
    m = ranking_metrics(RECOMMENDED, RELEVANT, ks=[3], n_items=10)
    ndcg_a = D2 / (D1 + D2)  # IDCG over min(3, 2) = 2 hits: 0.38685
    ndcg_b = D1 / D1  # 1.0
    ndcg_c = (D1 + D3) / (D1 + D2 + D3)  # IDCG over min(3, 4) = 3 hits: 1.5 / 2.13093 = 0.70392
    assert m["ndcg_at_3"] == pytest.approx((ndcg_a + ndcg_b + ndcg_c) / 3)
    assert m["ndcg_at_3"] == pytest.approx((0.386853 + 1.0 + 0.703918) / 3, abs=1e-6)
    assert m["recall_at_3"] == pytest.approx((1 / 2 + 1 / 1 + 2 / 4) / 3)  # hits / |relevant|
    assert m["hr_at_3"] == pytest.approx(1.0)
    assert m["mrr_at_3"] == pytest.approx((1 / 2 + 1 + 1) / 3)
    assert m["coverage_at_3"] == pytest.approx(5 / 10)  # {0, 1, 2, 3, 4}


def test_metrics_at_1_match_hand_computed_values():
    m = ranking_metrics(RECOMMENDED, RELEVANT, ks=[1], n_items=10)
    assert m == pytest.approx(
        {
            "recall_at_1": (0 + 1 + 1 / 4) / 3,
            "ndcg_at_1": (0 + 1 + 1) / 3,
            "hr_at_1": 2 / 3,
            "mrr_at_1": 2 / 3,
            "coverage_at_1": 3 / 10,  # {1, 4, 0}
        }
    )


def test_duplicate_relevant_items_count_once_and_perfect_lists_score_one():
    m = ranking_metrics(np.array([[3, 1]]), [np.array([1, 3, 3])], ks=[2], n_items=4)
    assert m["ndcg_at_2"] == pytest.approx(1.0)
    assert m["recall_at_2"] == pytest.approx(1.0)


def test_invalid_inputs_raise():
    with pytest.raises(ValueError, match="no relevant items"):
        ranking_metrics(np.array([[0, 1]]), [np.array([], dtype=int)], ks=[1], n_items=3)
    with pytest.raises(ValueError, match="every k"):
        ranking_metrics(np.array([[0, 1]]), [np.array([1])], ks=[5], n_items=3)
    with pytest.raises(ValueError, match="no users"):
        ranking_metrics(np.empty((0, 2), dtype=int), [], ks=[1], n_items=3)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        ranking_metrics(np.array([[0, 1]]), [np.array([7])], ks=[1], n_items=3)


def test_intra_list_diversity_counts_pairs_of_different_categories():
    from recsys_lib.evaluation.metrics import intra_list_diversity

    category = np.array([0, 0, 1, 2, -1])
    lists = np.array(
        [
            [0, 1, 2],  # pairs (0,1) same, (0,2) and (1,2) differ: 2/3
            [0, 4, -1],  # one pair, item 4 has no category: differs: 1
            [3, -1, -1],  # one item: no pair, left out
        ]
    )
    assert intra_list_diversity(lists, category, 3) == pytest.approx((2 / 3 + 1) / 2)
    assert intra_list_diversity(lists, category, 2) == pytest.approx((0 + 1) / 2)  # top 2: (0,1) same; (0,4) differ
    assert np.isnan(intra_list_diversity(lists[2:], category, 3))
