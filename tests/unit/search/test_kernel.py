"""The compiled kernel's own contract (recsys_lib/models/_kernel.cpp): streaming selection over
tiles and exact rescoring. InnerProductIndex's results on top of it are tested, on both CPU paths,
in test_index.py."""

import shutil

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsys_lib.search import kernel


def test_the_fused_kernel_is_built_where_a_compiler_is():
    """`pip install` builds it when a C++ compiler is present; a silent build failure would only
    show as a slower export, so CI checks it here."""
    if shutil.which("c++") or shutil.which("g++"):
        assert kernel.available()


needs_kernel = pytest.mark.skipif(not kernel.available(), reason="the fused kernel is not built here")


def _stream(scores: np.ndarray, cap: int, exclude: sp.csr_matrix | None, width: int):
    """Feed ``scores`` (n, m) to a FusedScan tile by tile, as InnerProductIndex does."""
    n, m = scores.shape
    scan = kernel.Reservoir(n, cap, exclude)
    tile = torch.empty(n, width, dtype=torch.float32)
    for base in range(0, m, width):
        valid = min(width, m - base)
        tile[:, :valid] = torch.from_numpy(scores[:, base : base + valid])
        scan.add(tile, valid, base)
    return scan.result(torch.float32)


@needs_kernel
@pytest.mark.parametrize("levels", [2, 1000])  # 2: a few distinct scores, ties everywhere
@pytest.mark.parametrize("cap", [1, 7, 40])
def test_streaming_selection_equals_a_stable_sort(levels, cap):
    rng = np.random.default_rng(cap + levels)
    n, m = 30, 3000
    scores = rng.integers(-levels, levels + 1, size=(n, m)).astype(np.float32)
    scores[0] = 0.0
    scores[0, ::2] = -0.0  # signed zeros are one score: the lower position first
    exclude = sp.random(n, m, density=0.05, random_state=cap, format="csr")
    exclude.data[:] = 1
    pos, val, left_out = _stream(scores, cap, exclude, width=512)
    masked = np.where(exclude.toarray() > 0, -np.inf, scores)
    for row in range(n):
        order = np.lexsort((np.arange(m), -masked[row]))[:cap]  # by score, then lower position
        np.testing.assert_array_equal(pos[row].numpy(), order)
        np.testing.assert_array_equal(val[row].numpy(), masked[row, order])
    assert left_out.all()  # every row had more than cap eligible scores


@needs_kernel
def test_rows_with_fewer_eligible_positions_than_cap_are_padded_and_complete():
    scores = np.arange(12, dtype=np.float32).reshape(2, 6)
    exclude = sp.csr_matrix(np.array([[1, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0]]))
    pos, val, left_out = _stream(scores, 4, exclude, width=4)  # a full tile, then a partial one
    assert pos.tolist() == [[5, 4, -1, -1], [5, 4, 3, 2]]
    assert np.isneginf(val[0, 2:].numpy()).all() and val[0, :2].tolist() == [5.0, 4.0]
    assert left_out.tolist() == [False, True]  # row 0 returned everything it could


@needs_kernel
def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="cap"):
        kernel.Reservoir(3, 0, None)
    scan = kernel.Reservoir(2, 3, None)
    with pytest.raises(ValueError, match="n_valid"):
        scan.add(torch.zeros(2, 8), 9, 0)  # more valid columns than the tile has
    with pytest.raises(ValueError, match="row-contiguous"):
        scan.add(torch.zeros(8, 2).T, 2, 0)  # columns not contiguous: the kernel would read past rows


@needs_kernel
def test_rescore_refuses_candidates_outside_the_table():
    """The native loop reads the table row of every candidate: one out of range must never get there."""
    table, users = torch.zeros(10, 4), torch.zeros(2, 4)
    with pytest.raises(ValueError, match="positions below 10"):
        kernel.rescore(users, table, torch.tensor([[1, 10], [2, -1]]), 1)
    with pytest.raises(ValueError, match="positions below 10"):
        kernel.rescore(users, table, torch.tensor([[1, -2], [2, -1]]), 1)
    with pytest.raises(ValueError, match="width 4"):
        kernel.rescore(users, torch.zeros(10, 5), torch.tensor([[1], [2]]), 1)


@needs_kernel
def test_kernel_rescoring_bits_do_not_depend_on_the_other_candidates():
    """An item's exact score is the same float whatever it is rescored with, and ties go to the
    lower position: the property that lets both search paths return the same bytes."""
    rng = np.random.default_rng(2)
    table = torch.from_numpy(rng.standard_normal((500, 65)).astype(np.float32))
    users = torch.from_numpy(rng.standard_normal((6, 65)).astype(np.float32))
    table[7] = table[3]  # a tie: 3 must come first
    few = torch.tensor([[3, 7, 11, -1]] * 6)
    many = torch.cat([torch.arange(20, 220).repeat(6, 1), few], dim=1)  # 203 real candidates
    pos_few, val_few = kernel.rescore(users, table, few, 3)
    pos_many, val_many = kernel.rescore(users, table, many, 250)
    assert (pos_many[:, 203:] == -1).all() and torch.isneginf(val_many[:, 203:]).all()
    exact = users.double() @ table.double().T
    for row in range(6):
        order = pos_few[row].tolist()
        assert order.index(3) < order.index(7)
        for p, v in zip(order, val_few[row].tolist(), strict=True):
            assert val_many[row, pos_many[row].tolist().index(p)].item() == v  # the same bits
            assert v == pytest.approx(exact[row, p].item(), rel=1e-5, abs=1e-5)
        assert (val_many[row, :203].diff() <= 0).all()


@needs_kernel
def test_a_mis_shaped_exclusion_matrix_is_refused_before_the_kernel_reads_it():
    with pytest.raises(ValueError, match="rows"):
        kernel.Reservoir(5, 3, sp.csr_matrix((2, 10), dtype=np.int8))


@needs_kernel
def test_minus_infinity_and_nan_scores_are_never_returned():
    scores = np.array([[1.0, -np.inf, np.nan, 0.5, -np.inf, -np.nan]], dtype=np.float32)
    pos, _, left_out = _stream(scores, 4, None, width=6)
    assert pos.tolist() == [[0, 3, -1, -1]] and not left_out[0]
    table = torch.tensor([[1.0], [-np.inf], [np.nan]])
    got_pos, _ = kernel.rescore(torch.ones(1, 1), table, torch.tensor([[0, 1, 2]]), 3)
    assert got_pos.tolist() == [[0, -1, -1]]
