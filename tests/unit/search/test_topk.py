import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsys_lib.search.topk import topk_excluding


def brute_force(scores: np.ndarray, excluded: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference: per row, eligible items sorted by (-score, index), padded with (-1, -inf)."""
    items = np.full((len(scores), k), -1, dtype=np.int64)
    values = np.full((len(scores), k), -np.inf, dtype=np.float32)
    for r, (row, ex) in enumerate(zip(scores, excluded, strict=True)):
        eligible = sorted((j for j in range(len(row)) if not ex[j]), key=lambda j: (-row[j], j))[:k]
        items[r, : len(eligible)] = eligible
        values[r, : len(eligible)] = row[eligible]
    return items, values


@pytest.mark.parametrize("seed", range(6))
def test_matches_brute_force_with_ties_padding_and_exclusions(seed):
    rng = np.random.default_rng(seed)
    for _ in range(60):
        n, n_items, k = rng.integers(1, 6), rng.integers(1, 80), rng.integers(1, 25)
        scores = rng.integers(0, rng.integers(1, 5), size=(n, n_items)).astype(np.float32)  # many ties
        excluded = rng.random((n, n_items)) < rng.choice([0.0, 0.3, 0.9, 1.0])
        items, values = topk_excluding(torch.from_numpy(scores), sp.csr_matrix(excluded.astype(np.float32)), k)
        ref_items, ref_values = brute_force(scores, excluded, k)
        np.testing.assert_array_equal(items.numpy(), ref_items)
        np.testing.assert_array_equal(values.numpy(), ref_values)
        assert items.dtype == torch.int64 and values.dtype == torch.float32


def test_ties_at_the_cut_go_to_lower_indices_on_the_topk_path():
    scores = torch.zeros(2, 100)  # n_items > 4k: the partial-sort path
    scores[0, [70, 30, 90]] = 1.0
    items, _ = topk_excluding(scores, None, 5)
    assert items.tolist() == [[30, 70, 90, 0, 1], [0, 1, 2, 3, 4]]


def test_all_excluded_rows_are_padding_and_scores_are_untouched():
    scores = torch.tensor([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    before = scores.clone()
    excluded = sp.csr_matrix(np.array([[1, 1, 1], [0, 1, 0]], dtype=np.float32))
    items, values = topk_excluding(scores, excluded, 4)
    assert items.tolist() == [[-1, -1, -1, -1], [2, 0, -1, -1]]
    assert torch.isneginf(values[0]).all() and values[1, :2].tolist() == [3.0, 1.0]
    assert torch.equal(scores, before)


def test_explicit_zeros_in_the_exclusion_matrix_do_not_exclude():
    excluded = sp.csr_matrix((np.array([0.0, 1.0], np.float32), (np.array([0, 0]), np.array([0, 1]))), shape=(1, 3))
    items, _ = topk_excluding(torch.tensor([[3.0, 2.0, 1.0]]), excluded, 2)
    assert items.tolist() == [[0, 2]]


def test_score_chunks_are_bounded_by_bytes_not_users():
    from recsys_lib.search.topk import SCORE_CHUNK_BYTES, bounded_chunk

    assert bounded_chunk(4096, 1000) == 4096  # small catalogue: the asked-for chunk
    rows = bounded_chunk(4096, 200_000)  # the 50M-event shop's catalogue
    assert rows * 200_000 * 4 <= SCORE_CHUNK_BYTES < (rows + 1) * 200_000 * 4
    assert bounded_chunk(4096, 10**12) == 1  # never zero
