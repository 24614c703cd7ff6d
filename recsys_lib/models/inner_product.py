"""Exact top-k by inner product over a whole catalogue, at close to matrix-multiply speed.

Scoring ``n`` users against ``m`` items is one matrix product; picking each row's top-k out of ``m``
scores costs a selection over every score, and on a CPU that selection (``torch.topk``) costs about
as much as the product itself. FAISS's flat index hides it by scanning tiles that stay in cache with
a heap per query. Here the same effect comes from pruning with block maxima, in a few whole-chunk
tensor operations that run unchanged on CPU and GPU:

1. scores land one item tile at a time in ``(tiles, n, tile)``; excluded items are set to -inf and
   the maximum of every block of 8 items is taken while the tile is still in cache (a block is
   8 strided positions of a tile, so its maximum is an elementwise maximum of contiguous slices);
2. the maximum of every group of 8 blocks (64 items) is taken, again elementwise;
3. the k groups with the largest maxima hold every top-k item (the k-th largest group maximum is a
   lower bound of the k-th largest score, since the k maxima are k distinct scores); inside them,
   the k blocks with the largest maxima do too, by the same argument;
4. the exact top-k is selected among those k blocks' 8k scores.

Selections run over ``m/64 + 8k + 8k`` values per user instead of ``m``. Rows where a bound is tied
(another group or block has exactly the k-th maximum) or where fewer than k items are eligible take
the exact path over the whole row, so results always equal a full sort: best first, ties broken by
the lower item index, padding -1 / -inf.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from recsys_lib.models.topk import topk_excluding

BLOCK = 8
"""Items per block (first level of maxima)."""
GROUP = 8
"""Blocks per group (second level): a group spans ``BLOCK * GROUP`` = 64 items."""
_SPAN = BLOCK * GROUP
_PRUNE_FACTOR = 2
"""Prune only when there are at least this many times ``k + 1`` groups of 64 items; below, sort
the row (pruning then saves little, and needs more than ``k`` groups anyway)."""


def default_device() -> torch.device:
    """The GPU where one is present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class InnerProductIndex:
    """Item vectors prepared for exact top-k search by ``user_vector . item_vector (+ item_bias)``.

    ``allowed`` (bool, n_items) drops items that may never be returned (unavailable products)
    before scoring, so they cost nothing. ``device`` defaults to :func:`default_device`.
    """

    def __init__(
        self,
        item_vectors: np.ndarray,
        item_bias: np.ndarray | None = None,
        *,
        allowed: np.ndarray | None = None,
        device: torch.device | str | None = None,
        tile: int = 2048,
    ):
        vectors = np.asarray(item_vectors, dtype=np.float32)  # (n_items, d)
        if item_bias is not None:  # fold the bias in: [u, 1] . [v, b] = u . v + b
            vectors = np.hstack([vectors, np.asarray(item_bias, dtype=np.float32).reshape(-1, 1)])
        self.n_items, self.dim = vectors.shape
        self.has_bias = item_bias is not None
        self.device = torch.device(device) if device is not None else default_device()
        keep = np.arange(self.n_items) if allowed is None else np.flatnonzero(np.asarray(allowed, dtype=bool))
        self.n_kept = len(keep)
        self._keep = torch.from_numpy(np.append(keep, -1).astype(np.int64)).to(self.device)  # [-1] maps -1 -> -1
        self._compact = np.full(self.n_items, -1, dtype=np.int64)  # item -> position among kept
        self._compact[keep] = np.arange(self.n_kept)
        self.tile = max(_SPAN, min(tile, -(-self.n_kept // _SPAN) * _SPAN))  # a multiple of 64
        self.n_tiles = max(1, -(-self.n_kept // self.tile))
        padded = np.zeros((self.n_tiles * self.tile, self.dim), dtype=np.float32)
        padded[: self.n_kept] = vectors[keep]
        tiles = padded.reshape(self.n_tiles, self.tile, self.dim).transpose(0, 2, 1)  # (tiles, d, tile)
        self._tiles = torch.from_numpy(np.ascontiguousarray(tiles)).to(self.device)
        self._scores: torch.Tensor | None = None
        self._block_max: torch.Tensor | None = None

    def search(
        self, user_vectors: np.ndarray | torch.Tensor, k: int, exclude: sp.csr_matrix | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items of each of ``user_vectors`` (n, d), best first, skipping ``exclude``'s
        non-zeros (n, n_items). Returns ``(items int64 (n, k) padded -1, scores float32 (n, k)
        padded -inf)``. Memory: one ``n x n_items`` score buffer, kept for the next call of the same
        size, so pick ``n`` to fit."""
        users = torch.as_tensor(user_vectors, dtype=torch.float32).to(self.device)
        if self.has_bias:
            users = torch.cat([users, torch.ones(len(users), 1, device=self.device)], dim=1)
        n = len(users)
        prune = self.n_kept >= _PRUNE_FACTOR * _SPAN * (k + 1)
        with torch.no_grad():
            scores, block_max = self._buffers(n)
            masked = self._mask_by_tile(exclude)
            for t in range(self.n_tiles):  # one tile at a time, so its block maxima are taken in cache
                torch.mm(users, self._tiles[t], out=scores[t])
                if t in masked:
                    rows, cols = masked[t]
                    scores[t, rows, cols] = -torch.inf
                if prune:
                    torch.amax(scores[t].view(n, BLOCK, self.tile // BLOCK), dim=1, out=block_max[t])
            if prune:
                idx, val = self._pruned(scores, block_max, k)
            else:
                idx, val = self._exact(scores, torch.arange(n, device=self.device), k)
            items = self._keep[idx]  # position among kept -> item index; -1 stays -1
        return items.cpu().numpy(), val.cpu().numpy()

    def _buffers(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Score and block-maximum buffers for ``n`` users, reused across calls: allocating (and
        page-faulting) a fresh ``n x n_items`` buffer per chunk costs more than the product."""
        if self._scores is None or self._scores.shape[1] != n:
            self._scores = torch.empty(self.n_tiles, n, self.tile, device=self.device)
            self._scores[-1, :, self.n_kept - (self.n_tiles - 1) * self.tile :] = -torch.inf  # padding
            self._block_max = torch.empty(self.n_tiles, n, self.tile // BLOCK, device=self.device)
        assert self._block_max is not None
        return self._scores, self._block_max

    def _mask_by_tile(self, exclude: sp.csr_matrix | None) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
        """``exclude``'s non-zeros among kept items as ``{tile: (rows, offsets in the tile)}``."""
        if exclude is None or not exclude.nnz:
            return {}
        coo = exclude.tocoo()
        cols = self._compact[coo.col]
        keep = (cols >= 0) & (coo.data != 0)
        rows, cols = coo.row[keep].astype(np.int64), cols[keep]
        tiles = cols // self.tile
        out = {}
        for t in np.unique(tiles):
            sel = tiles == t
            out[int(t)] = (
                torch.from_numpy(rows[sel]).to(self.device),
                torch.from_numpy(cols[sel] - t * self.tile).to(self.device),
            )
        return out

    def _exact(self, scores: torch.Tensor, rows: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Full stable top-k of the given rows (positions among kept items)."""
        full = scores[:, rows, :].permute(1, 0, 2).reshape(len(rows), -1)[:, : self.n_kept]
        return topk_excluding(full, None, k)

    def _pruned(self, scores: torch.Tensor, block_max: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Blocks and groups are strided inside a tile (block ``j`` of tile ``t`` holds positions
        ``t * tile + j + m * tile / 8``, m < 8), so their maxima are elementwise maxima of
        contiguous slices, which vectorise; ties between equal scores are resolved by position at
        the end."""
        nt, n, tile = scores.shape
        blocks_per_tile = tile // BLOCK
        groups_per_tile = blocks_per_tile // GROUP
        rows = torch.arange(n, device=self.device)[:, None]
        grouped = block_max.view(nt, n, GROUP, groups_per_tile)
        group_max = grouped.amax(dim=2).permute(1, 0, 2).reshape(n, nt * groups_per_tile)  # (n, groups)

        # the k groups holding every top-k item; the (k+1)-th tells whether the k-th was tied
        top, groups = torch.topk(group_max, k + 1, dim=1)
        unsure = (top[:, k] == top[:, k - 1]) | torch.isneginf(top[:, k - 1])  # or < k eligible items
        groups = groups[:, :k]
        g_tile, g_off = groups // groups_per_tile, groups % groups_per_tile
        candidates = grouped[g_tile, rows, :, g_off].reshape(n, k * GROUP)  # their blocks' maxima
        members = torch.arange(GROUP, device=self.device) * groups_per_tile  # block offsets in a group
        block_ids = (g_tile * blocks_per_tile + g_off)[:, :, None] + members  # (n, k, GROUP)
        block_ids = block_ids.reshape(n, k * GROUP)

        top, picked = torch.topk(candidates, k + 1, dim=1)  # the k blocks holding every top-k item
        unsure |= top[:, k] == top[:, k - 1]
        blocks = block_ids.gather(1, picked[:, :k])
        b_tile, b_off = blocks // blocks_per_tile, blocks % blocks_per_tile
        values = scores.view(nt, n, BLOCK, blocks_per_tile)[b_tile, rows, :, b_off].reshape(n, k * BLOCK)
        offsets = torch.arange(BLOCK, device=self.device) * blocks_per_tile
        positions = ((b_tile * tile + b_off)[:, :, None] + offsets).reshape(n, k * BLOCK)

        val, j = torch.topk(values, k + 1, dim=1)
        unsure |= val[:, k] == val[:, k - 1]  # a tie cut at the k-th place
        val, pos = val[:, :k], positions.gather(1, j[:, :k])
        order = torch.argsort(pos, dim=1)  # equal scores: the lower position first
        val, pos = val.gather(1, order), pos.gather(1, order)
        order = torch.argsort(-val, dim=1, stable=True)
        val, pos = val.gather(1, order), pos.gather(1, order)
        redo = torch.nonzero(unsure).flatten()
        if len(redo):
            pos[redo], val[redo] = self._exact(scores, redo, k)
        return pos, val
