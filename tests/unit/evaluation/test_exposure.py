"""Long-tail exposure against hand-computed groups and shares; the comparison figures render."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_lib.evaluation.exposure import popularity_exposure, popularity_groups, tail_share


def test_items_are_grouped_by_popularity_with_ties_by_index() -> None:
    popularity = np.array([5, 9, 0, 9, 1, 3, 7, 2, 8, 4])
    # by popularity desc, ties by index: 1, 3, 8, 6, 0, 9, 5, 7, 4, 2 -> one item per group
    assert popularity_groups(popularity).tolist() == [4, 0, 9, 1, 8, 6, 3, 7, 2, 5]
    assert popularity_groups(np.arange(20), bins=4).tolist() == [3] * 5 + [2] * 5 + [1] * 5 + [0] * 5


def test_exposure_is_the_share_of_recommendations_per_group() -> None:
    popularity = np.arange(20)[::-1]  # item 0 most popular; groups of 5 with 4 bins
    recommended = np.array([[0, 1, 6, -1], [0, 19, 7, 2]])
    exposure = popularity_exposure(recommended, popularity, k=3, bins=4)
    # top-3 lists: [0, 1, 6] and [0, 19, 7] -> groups [0, 0, 1] and [0, 3, 1]
    assert exposure.tolist() == pytest.approx([3 / 6, 2 / 6, 0, 1 / 6])
    assert popularity_exposure(np.full((2, 3), -1), popularity, k=3, bins=4).tolist() == [0, 0, 0, 0]
    assert tail_share(np.array([0.5, 0.2, 0.2, 0.1])) == pytest.approx(0.3)


def test_the_comparison_figures_render() -> None:
    from recsys_lib.evaluation import plots

    results = {"new": {"ndcg_at_10": 0.1, "ndcg_at_20": 0.12, "recall_at_10": 0.2}, "popularity": {"ndcg_at_10": 0.05}}
    fig = plots.metrics_at_k(results, (10, 20))
    assert len(fig.axes) == len(plots.METRICS)
    assert [line.get_label() for line in fig.axes[0].lines] == ["new", "popularity"]
    bars = plots.long_tail({"new": np.full(10, 0.1), "popularity": np.eye(10)[0]})
    assert len(bars.axes[0].patches) == 20
