"""The tensor candidate scan: GPUs, and CPUs without the compiled kernel.

On a GPU: one product over the whole catalogue per chunk, exclusions set to -inf, and
``torch.topk`` (ties cut anywhere: the proof does not need an order among candidates). On a CPU:
pruning with block maxima, in a few whole-chunk tensor operations:

1. scores land one item tile at a time in ``(tiles, n, tile)``; excluded items are set to -inf and
   the maximum of every block of 8 items is taken while the tile is still in cache (a block is
   8 strided positions of a tile, so its maximum is an elementwise maximum of contiguous slices);
2. the maximum of every group of 8 blocks (64 items) is taken, again elementwise;
3. the c groups with the largest maxima hold every one of the top c items (the c-th largest group
   maximum is a lower bound of the c-th largest score, since the c maxima are c distinct scores);
   inside them, the c blocks with the largest maxima do too, by the same argument;
4. the top c are selected among those c blocks' 8c scores.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from recsys_lib.search.table import SPAN, ItemTable
from recsys_lib.search.topk import topk_excluding

BLOCK = 8
"""Items per block (first level of maxima)."""
GROUP = 8
"""Blocks per group (second level): a group spans ``BLOCK * GROUP`` = 64 items."""
TILE = 2048
"""Items per product on a CPU (a GPU takes the whole catalogue in one)."""
_PRUNE_FACTOR = 2
"""Prune only when there are at least this many times ``k + 1`` groups of 64 items; below, sort
the row (pruning then saves little, and needs more than ``k`` groups anyway)."""
if BLOCK * GROUP != SPAN:  # the two-level scan relies on it
    raise ImportError(f"search.tensor: BLOCK x GROUP ({BLOCK} x {GROUP}) must equal SPAN ({SPAN})")


class TensorScan:
    """:class:`~recsys_lib.search.table.Scan` in whole-chunk tensor operations."""

    def __init__(self, table: ItemTable):
        self.table = table
        self._buffers_by_n: dict[tuple[int, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def exact_row_width(self) -> int:
        """Kept items x dimension: whole-row rescoring gathers every item's vector."""
        return self.table.n_kept * self.table.dim  # rescoring gathers every position's vector

    def candidates(
        self, users: torch.Tensor, dtype: torch.dtype, cap: int, exclude: sp.csr_matrix | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The best ``cap`` positions per user (see :meth:`Scan.candidates
        <recsys_lib.search.table.Scan.candidates>`): on CUDA one ``torch.topk`` over whole rows;
        on a CPU the block-maxima pruning of the module docstring when the catalogue is large
        enough for ``cap``, else a sort of each row."""
        masked = self._mask_by_tile(exclude)
        if (
            self.table.device.type == "cuda"
        ):  # one pass of torch.topk over whole rows costs less than pruning's launches
            scores, _ = self._scan(users, dtype, masked, block_maxima=False)
            full = scores.permute(1, 0, 2).reshape(len(users), -1)[:, : self.table.n_kept]  # a view with one tile
            val, pos = torch.topk(full, cap, dim=1)
        elif self._prunable(cap):
            scores, block_max = self._scan(users, dtype, masked, block_maxima=True)
            pos, val = self._pruned(scores, block_max, cap)
        else:
            scores, _ = self._scan(users, dtype, masked, block_maxima=False)
            pos, val = self._sorted(scores, cap)
        val = val.float()
        pos = torch.where(torch.isneginf(val), -1, pos)  # excluded items and padding
        return pos, val, ~torch.isneginf(val[:, -1])

    def exact_top(self, users: torch.Tensor, pos: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One ``vecdot`` per item (a bmm's bits change with the number of candidates)."""
        n_kept = self.table.n_kept
        vectors = torch.index_select(self.table.flat, 0, pos.clamp(min=0).flatten()).view(*pos.shape, -1)
        exact = torch.where(pos < 0, -torch.inf, torch.linalg.vecdot(vectors, users[:, None, :]))
        val, pos = by_score_then_position(exact, torch.where(pos < 0, n_kept, pos))
        pos, val = torch.where(pos >= n_kept, -1, pos)[:, :k], val[:, :k]
        if pos.shape[1] < k:  # fewer candidates than k: pad
            short = k - pos.shape[1]
            pos = torch.cat([pos, pos.new_full((len(pos), short), -1)], dim=1)
            val = torch.cat([val, val.new_full((len(val), short), -torch.inf)], dim=1)
        return pos, val

    def leaves_out(self, cap: int) -> bool:
        """Whether the catalogue is large enough for block-maxima pruning at ``cap`` (at least
        ``2 x 64 x (cap + 1)`` items)."""
        return self._prunable(cap)

    def release(self) -> None:
        """Drop the score and block-maxima buffers kept per chunk size; the next search allocates them again."""
        self._buffers_by_n.clear()

    def _prunable(self, k: int) -> bool:
        return self.table.n_kept >= _PRUNE_FACTOR * SPAN * (k + 1)

    def _scan(
        self,
        users: torch.Tensor,
        dtype: torch.dtype,
        masked: dict[int, tuple[torch.Tensor, torch.Tensor]],
        *,
        block_maxima: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores ``(tiles, n, tile)`` in ``dtype`` with exclusions and padding at -inf, and (if
        asked) block maxima ``(tiles, n, tile/8)``, one tile at a time so maxima are taken in cache."""
        table = self.table
        n = len(users)
        scores, block_max = self._buffers(n, dtype)
        tiles = table.tiles(dtype)
        users = users.to(dtype)
        pad = table.width(table.n_tiles - 1)
        for t in range(table.n_tiles):
            torch.mm(users, tiles[t], out=scores[t])
            if t == table.n_tiles - 1:
                scores[t, :, pad:] = -torch.inf
            if t in masked:
                rows, cols = masked[t]
                scores[t, rows, cols] = -torch.inf
            if block_maxima:
                torch.amax(scores[t].view(n, BLOCK, table.tile // BLOCK), dim=1, out=block_max[t])
        return scores, block_max

    def _buffers(self, n: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Score and block-maximum buffers for ``n`` users, reused across calls: allocating (and
        page-faulting) a fresh ``n x n_items`` buffer per chunk costs more than the product. One
        pair is kept at a time, so memory stays at one chunk's scores."""
        key = (n, dtype)
        if key not in self._buffers_by_n:
            self._buffers_by_n.clear()  # before allocating: never two chunks' buffers at once
            t = self.table
            self._buffers_by_n[key] = (
                torch.empty(t.n_tiles, n, t.tile, device=t.device, dtype=dtype),
                torch.empty(t.n_tiles, n, t.tile // BLOCK, device=t.device, dtype=dtype),
            )
        return self._buffers_by_n[key]

    def _mask_by_tile(self, exclude: sp.csr_matrix | None) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
        """``exclude``'s non-zeros among kept items as ``{tile: (rows, offsets in the tile)}``."""
        positions = self.table.positions(exclude)
        if positions is None:
            return {}
        coo = positions.tocoo()
        rows, cols = coo.row.astype(np.int64), coo.col.astype(np.int64)
        tile = self.table.tile
        tiles = cols // tile
        out = {}
        for t in np.unique(tiles):
            sel = tiles == t
            out[int(t)] = (
                torch.from_numpy(rows[sel]).to(self.table.device),
                torch.from_numpy(cols[sel] - t * tile).to(self.table.device),
            )
        return out

    def _sorted(self, scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Full stable top-k of every row (positions among kept items)."""
        full = scores.permute(1, 0, 2).reshape(scores.shape[1], -1)[:, : self.table.n_kept]
        return topk_excluding(full, None, k)

    def _pruned(self, scores: torch.Tensor, block_max: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``k`` candidate positions and scores by block and group maxima (see the module
        docstring), best first: ties are cut anywhere, but no item left out scores above the last
        one returned (what the proof needs).

        Blocks and groups are strided inside a tile (block ``j`` of tile ``t`` holds positions
        ``t * tile + j + m * tile / 8``, m < 8), so their maxima are elementwise maxima of
        contiguous slices, which vectorise."""
        device = self.table.device
        nt, n, tile = scores.shape
        blocks_per_tile = tile // BLOCK
        groups_per_tile = blocks_per_tile // GROUP
        rows = torch.arange(n, device=device)[:, None]
        grouped = block_max.view(nt, n, GROUP, groups_per_tile)
        group_max = grouped.amax(dim=2).permute(1, 0, 2).reshape(n, nt * groups_per_tile)  # (n, groups)

        groups = torch.topk(group_max, k, dim=1).indices  # the k groups holding every top-k item
        g_tile, g_off = groups // groups_per_tile, groups % groups_per_tile
        candidates = grouped[g_tile, rows, :, g_off].reshape(n, k * GROUP)  # their blocks' maxima
        members = torch.arange(GROUP, device=device) * groups_per_tile  # block offsets in a group
        block_ids = (g_tile * blocks_per_tile + g_off)[:, :, None] + members  # (n, k, GROUP)
        block_ids = block_ids.reshape(n, k * GROUP)

        picked = torch.topk(candidates, k, dim=1).indices  # the k blocks holding every top-k item
        blocks = block_ids.gather(1, picked)
        b_tile, b_off = blocks // blocks_per_tile, blocks % blocks_per_tile
        values = scores.view(nt, n, BLOCK, blocks_per_tile)[b_tile, rows, :, b_off].reshape(n, k * BLOCK)
        offsets = torch.arange(BLOCK, device=device) * blocks_per_tile
        positions = ((b_tile * tile + b_off)[:, :, None] + offsets).reshape(n, k * BLOCK)

        val, j = torch.topk(values, k, dim=1)
        val, pos = by_score_then_position(val.float(), positions.gather(1, j))
        return pos, val


def by_score_then_position(val: torch.Tensor, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of (score, position) pairs sorted by score descending, equal scores by lower position."""
    order = torch.argsort(pos, dim=1)
    val, pos = val.gather(1, order), pos.gather(1, order)
    order = torch.argsort(-val, dim=1, stable=True)
    return val.gather(1, order), pos.gather(1, order)
