"""Masked top-k selection over a block of scores: the one place excluded items are removed."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

#: The most float32 scores one chunk of users may materialise (256 MiB): 4,096 users x 200k items
#: would be 3.3 GB, and twice that with the exclusion mask.
SCORE_CHUNK_BYTES = 256 * 2**20


def bounded_chunk(chunk_size: int, n_items: int) -> int:
    """``chunk_size``, lowered so that a chunk's (users, n_items) float32 scores fit :data:`SCORE_CHUNK_BYTES`."""
    return max(1, min(chunk_size, SCORE_CHUNK_BYTES // (4 * max(n_items, 1))))


def topk_excluding(
    scores: torch.Tensor, exclude_rows: sp.csr_matrix | None, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` columns per row of ``scores`` (n, n_items), skipping ``exclude_rows``' non-zeros.

    Ties are broken by the lower item index, so results are deterministic. Items scored -inf count
    as excluded. Rows with fewer than ``k`` eligible items are padded with index -1 and score -inf.
    ``scores`` is never modified (masking happens on a copy); explicitly stored zeros in
    ``exclude_rows`` do not exclude. Returns ``(indices int64 (n, k), scores float32 (n, k))``.
    """
    n, n_items = scores.shape
    masked = scores.clone()
    if exclude_rows is not None and exclude_rows.nnz:
        coo = exclude_rows.tocoo()
        stored = coo.data != 0  # an explicit zero is not an exclusion
        rows = torch.from_numpy(coo.row[stored].astype(np.int64)).to(masked.device)
        cols = torch.from_numpy(coo.col[stored].astype(np.int64)).to(masked.device)
        masked[rows, cols] = -torch.inf
    kk = min(k, n_items)
    # torch.topk does not promise a tie order; a stable descending sort does (lower index first).
    if kk < n_items and n_items > 4 * kk:
        vals, idx = torch.topk(masked, kk, dim=1, sorted=True)
        # re-sort each row stably by (-score, index) so equal scores come in index order
        order = torch.argsort(idx, dim=1)
        vals, idx = vals.gather(1, order), idx.gather(1, order)
        order = torch.argsort(-vals, dim=1, stable=True)
        vals, idx = vals.gather(1, order), idx.gather(1, order)
        # topk may have cut a tie group at the boundary arbitrarily; fix by the k-th value
        kth = vals[:, -1:]
        boundary_ties = (masked == kth).sum(dim=1) > (vals == kth).sum(dim=1)
        if bool(boundary_ties.any()):
            rows_fix = torch.nonzero(boundary_ties).flatten()
            sv, si = torch.sort(masked[rows_fix], dim=1, descending=True, stable=True)
            vals[rows_fix], idx[rows_fix] = sv[:, :kk], si[:, :kk]
    else:
        vals, idx = torch.sort(masked, dim=1, descending=True, stable=True)
        vals, idx = vals[:, :kk], idx[:, :kk]
    idx = torch.where(torch.isneginf(vals), torch.full_like(idx, -1), idx)
    if kk < k:
        pad = k - kk
        idx = torch.cat([idx, torch.full((n, pad), -1, dtype=idx.dtype, device=idx.device)], dim=1)
        vals = torch.cat([vals, torch.full((n, pad), -torch.inf, dtype=vals.dtype, device=vals.device)], dim=1)
    return idx.to(torch.int64), vals.to(torch.float32)
