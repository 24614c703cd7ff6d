import numpy as np
import pytest
import scipy.sparse as sp

from recsys_lib.search import kernel
from recsys_lib.search.index import InnerProductIndex
from tests.unit.search.test_topk import brute_force


@pytest.fixture(autouse=True, params=["fused", "tensor"])
def scan_kind(request, monkeypatch):
    """Every test runs on both CPU implementations: the compiled kernel (the default where it is
    built) and the tensor path (GPUs, installs without a C++ compiler)."""
    if request.param == "fused" and not kernel.available():
        pytest.skip("the fused kernel is not built here")
    if request.param == "tensor":
        monkeypatch.setattr(kernel, "available", lambda: False)
    return request.param


def _case(rng, n, n_items, dim, levels):
    """Small integer vectors: every product is exact in float32, and equal scores are common."""
    users = rng.integers(-levels, levels + 1, size=(n, dim)).astype(np.float32)
    items = rng.integers(-levels, levels + 1, size=(n_items, dim)).astype(np.float32)
    return users, items


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("levels", [1, 3, 50])  # 1: ties everywhere; 50: few ties
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_pruned_search_equals_a_full_sort(seed, levels, precision):
    rng = np.random.default_rng(seed)
    n, n_items, dim, k = 37, 6000, 6, 7  # >= 2 * 64 * (2k + 17) items: the pruned and certified paths
    users, items = _case(rng, n, n_items, dim, levels)
    bias = rng.integers(-2, 3, size=n_items).astype(np.float32)
    allowed = rng.random(n_items) > 0.1  # unavailable items are never returned
    excluded = sp.random(n, n_items, density=0.02, random_state=seed, format="csr")  # history items
    excluded.data[:] = 1.0

    index = InnerProductIndex(items, bias, allowed=allowed, device="cpu", tile=512, precision=precision)
    got_items, got_scores = index.search(users, k, excluded)

    scores = users @ items.T + bias
    mask = excluded.toarray() > 0
    mask |= ~allowed[None, :]
    ref_items, ref_scores = brute_force(scores, mask, k)
    np.testing.assert_array_equal(got_items, ref_items)
    np.testing.assert_array_equal(got_scores, ref_scores)


def test_rows_with_fewer_eligible_items_than_k_are_padded():
    rng = np.random.default_rng(0)
    users, items = _case(rng, 3, 2000, 4, 5)
    allowed = np.ones(2000, dtype=bool)
    excluded = np.zeros((3, 2000), dtype=np.float32)
    excluded[1, 3:] = 1.0  # user 1 may only get items 0, 1 and 2
    index = InnerProductIndex(items, allowed=allowed, device="cpu")
    got_items, got_scores = index.search(users, 5, sp.csr_matrix(excluded))
    ref_items, ref_scores = brute_force(users @ items.T, excluded > 0, 5)
    np.testing.assert_array_equal(got_items, ref_items)
    np.testing.assert_array_equal(got_scores, ref_scores)
    assert got_items[1, 3:].tolist() == [-1, -1] and np.isneginf(got_scores[1, 3:]).all()


@pytest.mark.parametrize("n_items", [1, 5, 64, 300])
def test_small_catalogues_take_the_exact_path(n_items):
    rng = np.random.default_rng(n_items)
    users, items = _case(rng, 4, n_items, 3, 2)
    got_items, got_scores = InnerProductIndex(items, device="cpu").search(users, 10, None)
    ref_items, ref_scores = brute_force(users @ items.T, np.zeros((4, n_items), dtype=bool), 10)
    np.testing.assert_array_equal(got_items, ref_items)
    np.testing.assert_array_equal(got_scores, ref_scores)


def test_every_item_unavailable_gives_only_padding():
    items = np.ones((10, 2), dtype=np.float32)
    got_items, got_scores = InnerProductIndex(items, allowed=np.zeros(10, bool), device="cpu").search(
        np.ones((2, 2), np.float32), 3
    )
    assert (got_items == -1).all() and np.isneginf(got_scores).all()


def test_certified_bf16_search_returns_the_exact_top_k_of_real_valued_vectors():
    """bf16 scores pick the candidates, fp32 decides, and rows the bound cannot prove are redone."""
    rng = np.random.default_rng(7)
    n, n_items, dim, k = 64, 20_000, 32, 10
    users = rng.standard_normal((n, dim)).astype(np.float32) * rng.uniform(0.1, 3, (n, 1)).astype(np.float32)
    items = rng.standard_normal((n_items, dim)).astype(np.float32) * rng.uniform(0.5, 2, (n_items, 1)).astype(
        np.float32
    )
    excluded = sp.random(n, n_items, density=0.001, random_state=1, format="csr")
    excluded.data[:] = 1.0
    index = InnerProductIndex(items, device="cpu", precision="bf16")
    assert index.bf16
    got_items, got_scores = index.search(users, k, excluded)

    exact = users.astype(np.float64) @ items.T.astype(np.float64)
    exact[excluded.toarray() > 0] = -np.inf
    for row in range(n):
        chosen = exact[row, got_items[row]]
        others = np.delete(exact[row], got_items[row])
        assert chosen.min() >= others.max() - 1e-4  # nothing left out scores higher
        np.testing.assert_allclose(got_scores[row], chosen, rtol=1e-5, atol=1e-4)
        assert (np.diff(got_scores[row]) <= 0).all()


def test_auto_precision_tries_both_paths_then_keeps_the_faster(monkeypatch):
    """Which path is faster depends on the machine; the index times both on its first chunks.
    Every chunk, trial or not, returns the exact top-k."""
    import recsys_lib.search.index as ip

    monkeypatch.setattr(ip, "_bf16_pays_off", lambda device, dim: True)
    rng = np.random.default_rng(3)
    users, items = _case(rng, 8 * 16, 6000, 8, 50)
    index = InnerProductIndex(items, device="cpu", precision="auto")
    k = 5
    paths = []
    for chunk in range(8):
        rows = slice(16 * chunk, 16 * (chunk + 1))
        paths.append(index.path(k))
        got_items, got_scores = index.search(users[rows], k)
        ref_items, ref_scores = brute_force(users[rows] @ items.T, np.zeros((16, 6000), dtype=bool), k)
        np.testing.assert_array_equal(got_items, ref_items)
        np.testing.assert_array_equal(got_scores, ref_scores)
    assert paths[:6] == ["fp32"] * 3 + ["bf16"] * 3  # the trials, one path after the other
    faster = min(("bf16", "fp32"), key=lambda p: min(index._trials[(k, p)][1:]))
    assert paths[6:] == [faster, faster]

    index._trials[(k, "fp32")] = [0.1, 1.0, 1.0]  # as if fp32 had been slow here (its first chunk,
    assert index.path(k) == "bf16"  # which allocated the buffers, does not count)
    index._trials[(k, "bf16")] = [0.1, 2.0, 2.0]
    assert index.path(k) == "fp32"
    assert index.path(k + 1) == "fp32"  # another k is timed on its own, from its first trial


def test_both_paths_return_the_same_bytes_for_real_valued_vectors(monkeypatch):
    """The path is chosen by timing, so a retried export shard may take the other one: its rows
    must not change (same items, same order, bit-identical scores)."""
    import recsys_lib.search.index as ip

    monkeypatch.setattr(ip, "_bf16_pays_off", lambda device, dim: True)
    rng = np.random.default_rng(11)
    users = rng.standard_normal((200, 24)).astype(np.float32)
    items = rng.standard_normal((9000, 24)).astype(np.float32)
    bias = rng.standard_normal(9000).astype(np.float32)
    excluded = sp.random(200, 9000, density=0.002, random_state=2, format="csr")
    excluded.data[:] = 1.0
    for k in (1, 10, 20):
        index = InnerProductIndex(items, bias, device="cpu", precision="auto")
        found = {}
        for _ in range(6):  # the trials: fp32 three times, then bf16, on the same users
            path = index.path(k)
            found[path] = index.search(users, k, excluded)
        assert set(found) == {"bf16", "fp32"}
        np.testing.assert_array_equal(found["fp32"][0], found["bf16"][0])
        np.testing.assert_array_equal(found["fp32"][1], found["bf16"][1])


def test_index_uses_the_kernel_it_was_asked_for(scan_kind):
    items = np.eye(4, dtype=np.float32)
    assert InnerProductIndex(items, device="cpu").fused == (scan_kind == "fused")


def test_signed_zero_scores_tie_and_go_to_the_lower_item():
    """-0.0 and +0.0 are equal scores: the lower item comes first, as in a stable sort."""
    items = np.array([[1.0], [-1.0], [1.0], [-1.0], [2.0]] * 300, dtype=np.float32)
    users = np.array([[0.0], [-0.0]], dtype=np.float32)
    got_items, got_scores = InnerProductIndex(items, device="cpu", precision="fp32").search(users, 5)
    assert got_items.tolist() == [[0, 1, 2, 3, 4]] * 2
    assert (got_scores == 0).all()


def test_rows_left_open_by_the_bf16_proof_are_redone_exactly_in_either_way(monkeypatch):
    """Ties everywhere leave most bf16 rows unproven: they are redone by one whole-row product when
    few, through the tiles when many; both give the full sort."""
    import recsys_lib.search.proof as proof

    rng = np.random.default_rng(5)
    users, items = _case(rng, 40, 6000, 4, 1)
    excluded = sp.random(40, 6000, density=0.01, random_state=3, format="csr")
    excluded.data[:] = 1.0
    ref = brute_force(users @ items.T, excluded.toarray() > 0, 5)
    for whole_rows in (proof.WHOLE_ROWS, 0):
        monkeypatch.setattr(proof, "WHOLE_ROWS", whole_rows)
        got = InnerProductIndex(items, device="cpu", precision="bf16").search(users, 5, excluded)
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_array_equal(got[1], ref[1])


def test_stats_count_the_rows_searched_and_the_rows_the_proof_left_open():
    """Ties everywhere leave bf16 rows unproven (rescored in full, counted); distinct real-valued
    scores leave none open on the fp32 path."""
    rng = np.random.default_rng(5)
    users, items = _case(rng, 40, 6000, 4, 1)
    index = InnerProductIndex(items, device="cpu", precision="bf16")
    index.search(users, 5)
    index.search(users[:10], 5)
    assert index.stats.rows == {"bf16": 50}
    assert 0 < index.stats.rescored["bf16"] <= 50
    assert index.stats.rescored_share("bf16") == index.stats.rescored_share() == index.stats.rescored["bf16"] / 50

    users, items = rng.standard_normal((100, 16), np.float32), rng.standard_normal((6000, 16), np.float32)
    exact = InnerProductIndex(items, device="cpu", precision="fp32")
    exact.search(users, 10)
    assert exact.stats.rows == {"fp32": 100} and exact.stats.rescored["fp32"] == 0
    assert exact.stats.rescored_share("bf16") == 0.0


def test_k_zero_returns_empty_rows():
    items = np.eye(8, dtype=np.float32)
    got_items, got_scores = InnerProductIndex(items, device="cpu").search(np.ones((3, 8), np.float32), 0)
    assert got_items.shape == (3, 0) and got_scores.shape == (3, 0)


def test_both_paths_agree_on_near_ties_in_the_last_bits(monkeypatch):
    """Items whose scores differ in the last bit: the items reported must be the best by the
    reported score on both paths (found by review: the fp32 path once ranked by the product's
    bits and reported the rescored ones)."""
    import recsys_lib.search.index as ip

    monkeypatch.setattr(ip, "_bf16_pays_off", lambda device, dim: True)
    d = 64
    for seed in range(6):
        rng = np.random.default_rng(seed)
        v = (1 + rng.standard_normal(d) * 10.0 ** rng.integers(-7, -2, d)).astype(np.float32)
        near = np.stack([v[rng.permutation(d)] for _ in range(10)])  # one score, summed in 10 orders
        rest = -np.ones((3000, d), np.float32) + rng.standard_normal((3000, d)).astype(np.float32) * 0.01
        items = np.vstack([near, rest]).astype(np.float32)
        users = np.ones((2, d), np.float32)
        for k in (1, 3):
            index = InnerProductIndex(items, device="cpu", precision="auto")
            found = {}
            for _ in range(6):  # the trials run both paths
                path = index.path(k)
                found[path] = index.search(users, k)
            assert set(found) == {"fp32", "bf16"}
            np.testing.assert_array_equal(found["fp32"][0], found["bf16"][0])
            np.testing.assert_array_equal(found["fp32"][1], found["bf16"][1])


def test_items_scored_minus_infinity_are_not_returned():
    items = np.eye(6, dtype=np.float32)
    bias = np.array([0, 0, -np.inf, -np.inf, -np.inf, -np.inf], dtype=np.float32)
    got_items, got_scores = InnerProductIndex(items, bias, device="cpu").search(np.ones((2, 6), np.float32), 4)
    assert got_items.tolist() == [[0, 1, -1, -1]] * 2 and np.isneginf(got_scores[:, 2:]).all()


def test_edge_shapes_no_users_no_items_and_a_mis_shaped_exclusion():
    items = np.ones((300, 4), dtype=np.float32)
    got = InnerProductIndex(items, device="cpu").search(np.zeros((0, 4), np.float32), 5)
    assert got[0].shape == (0, 5) and got[1].shape == (0, 5)
    nothing = InnerProductIndex(items, allowed=np.zeros(300, bool), device="cpu", precision="bf16")
    got = nothing.search(np.ones((2, 4), np.float32), 3)
    assert (got[0] == -1).all() and np.isneginf(got[1]).all()
    with pytest.raises(ValueError, match="exclude"):
        InnerProductIndex(items, device="cpu").search(np.ones((3, 4), np.float32), 2, sp.csr_matrix((2, 300)))


def test_score_reports_the_bits_search_reports_for_any_list_of_items():
    """Re-ranking a given list uses the search's own scores: the same bits, -inf where an item is
    none (-1) or not allowed."""
    rng = np.random.default_rng(8)
    users = rng.standard_normal((5, 16)).astype(np.float32)
    items = rng.standard_normal((3000, 16)).astype(np.float32)
    bias = rng.standard_normal(3000).astype(np.float32)
    allowed = np.ones(3000, dtype=bool)
    allowed[7] = False
    index = InnerProductIndex(items, bias, allowed=allowed, device="cpu")
    top, top_scores = index.search(users, 20)
    listed = np.concatenate([top[:, ::-1], np.full((5, 1), -1), np.full((5, 1), 7)], axis=1)
    got = index.score(users, listed)
    np.testing.assert_array_equal(got[:, :20], top_scores[:, ::-1])
    assert np.isneginf(got[:, 20:]).all()
