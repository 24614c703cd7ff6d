"""Exactness proof: from a scan's candidates to the exact top-k, whatever the scan's precision.

1. **scan** for candidates (bf16: ``2k + 16``, fp32: ``k + 16``): every eligible item left out
   scores, in the scan's precision, at most the lowest candidate's ``low``;
2. **rank** the candidates by their exact fp32 score (the scan's ``exact_top``), whose bits depend
   only on the user and the item, then by lower item index;
3. **prove** each row: a left-out item's exact score is below ``low + E`` (``E`` bounds the scan's
   error plus the exact score's: :data:`BF16_ERROR` or :func:`fp32_error`, times ``|u| max|v|``),
   so a row whose k-th exact score is above that is the full sort's answer; open rows (near-ties,
   rare) are scored in full.

So results equal a full sort by the reported score, and both precisions return the same bytes.
"""

from __future__ import annotations

import scipy.sparse as sp
import torch

from recsys_lib.search.table import Scan

BF16_ERROR = 2.0**-6
"""Bound on ``|bf16 score - true score| / (|u| |v|)``: both inputs rounded to bf16 (2^-8 relative
each, so 2^-7 + 2^-16 on every product), products summed in fp32 (d 2^-24 <= 2^-12 for d <= 4096),
the output rounded to bf16 (2^-8 of a score at most ``|u| |v|``); by Cauchy-Schwarz the sum of
``|u_j v_j|`` is at most ``|u| |v|``. Total below 0.0121 < 2^-6; the rest covers the exact
score's own fp32 error (``2 gamma_d``, under 2^-10 for d <= 4096)."""
WHOLE_ROWS = 1 << 22
"""Rows a proof leaves open (near-ties, rare) are scored in full, as many at a time as keep this
many exact scores (or, on the tensor path, gathered vector components) in flight."""


def fp32_error(dim: int) -> float:
    """Bound on ``|fp32 score - exact fp32 score| / (|u| |v|)`` between a product's score and the
    exact rescoring's, whatever the order of either sum: each is within ``gamma_d = d 2^-24 / (1 -
    d 2^-24)`` of the true dot product (Cauchy-Schwarz), so twice that, with 10% to spare."""
    gamma = dim * 2.0**-24 / (1 - dim * 2.0**-24)
    return 2.2 * gamma


def spare(dtype: torch.dtype, k: int) -> int:
    """Candidates beyond ``k`` a scan in ``dtype`` collects (bf16 scores are coarser: more)."""
    return k + 16 if dtype == torch.bfloat16 else 16


def certified_top(
    scan: Scan, users: torch.Tensor, k: int, dtype: torch.dtype, exclude: sp.csr_matrix | None
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The exact top-``k`` positions and fp32 scores of ``users`` (n, d) among ``scan``'s table,
    skipping ``exclude``'s non-zeros: candidates from a scan in ``dtype``, their exact scores, and a
    proof per row that nothing left out beats the k-th (rows it leaves open are scored in full).
    Returns the positions, the scores and how many rows the proof left open."""
    n_kept = scan.table.n_kept
    pos, approx, left_out = scan.candidates(users, dtype, min(k + spare(dtype, k), n_kept), exclude)
    low = torch.where(left_out, approx[:, -1], -torch.inf)  # -inf: nothing eligible left out
    idx, val = scan.exact_top(users, pos, k)
    bound = BF16_ERROR if dtype == torch.bfloat16 else fp32_error(scan.table.dim)
    error = bound * users.norm(dim=1) * scan.table.max_norm
    proven = (val[:, -1] > low + error) | torch.isneginf(low)  # nothing else can reach the k-th
    redo = torch.nonzero(~proven).flatten()
    if len(redo):
        rows = redo.cpu().numpy()
        idx[redo], val[redo] = whole_rows(scan, users[redo], k, exclude[rows] if exclude is not None else None)
    return idx, val, len(redo)


def whole_rows(
    scan: Scan, users: torch.Tensor, k: int, exclude: sp.csr_matrix | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``scan.exact_top`` over every eligible position, a few rows at a time (within
    :data:`WHOLE_ROWS` numbers in flight)."""
    table = scan.table
    positions = table.positions(exclude)
    per_batch = max(1, WHOLE_ROWS // max(scan.exact_row_width, 1))
    found = []
    for lo in range(0, len(users), per_batch):
        hi = min(lo + per_batch, len(users))
        pos = torch.arange(table.n_kept, device=table.device).repeat(hi - lo, 1)
        if positions is not None:
            coo = positions[lo:hi].tocoo()
            pos[torch.from_numpy(coo.row).long(), torch.from_numpy(coo.col).long()] = -1
        found.append(scan.exact_top(users[lo:hi], pos, k))
    return torch.cat([f[0] for f in found]), torch.cat([f[1] for f in found])
