"""The CPU candidate scan: each item tile scored into one small buffer and selected from while in
cache by the compiled kernel (:mod:`~recsys_lib.search.kernel`). The score matrix never goes to
memory; results are exact, ties to the lower position."""

from __future__ import annotations

import scipy.sparse as sp
import torch

from recsys_lib.search import kernel
from recsys_lib.search.table import ItemTable

WHOLE_ROW_SCORES = 1 << 20
"""Up to this many scores (4 MB of fp32: 10 users x 100k items), a search scores whole rows at once."""


def fused_usable(device: torch.device, n_items: int) -> bool:
    """Whether the fused scan can serve a catalogue of ``n_items`` on ``device``: CPU, the kernel
    built, and positions that fit the 32 bits the kernel packs them in."""
    return device.type == "cpu" and kernel.available() and n_items < 1 << 32


class FusedScan:
    """:class:`~recsys_lib.search.table.Scan` through the compiled kernel."""

    TILE = 512
    """Items per tile: 1,024 users x 512 bf16 scores is 1 MB, half of it per core, so a tile is
    selected from while in L2 (measured 100k items, k = 10: 512 > 1,024 = 2,048)."""

    def __init__(self, table: ItemTable):
        self.table = table
        self._scratch: dict[tuple[int, torch.dtype], torch.Tensor] = {}

    @property
    def exact_row_width(self) -> int:
        """Kept items: the kernel rescores a user from the flat table, one fp32 score per item."""
        return self.table.n_kept  # the kernel rescores from the table, one score per position

    def candidates(
        self, users: torch.Tensor, dtype: torch.dtype, cap: int, exclude: sp.csr_matrix | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The best ``cap`` positions per user as the kernel's reservoir selects them tile by tile
        (see :meth:`Scan.candidates <recsys_lib.search.table.Scan.candidates>`); a few users (a
        live request) are scored in one fp32 product over the whole catalogue instead."""
        table = self.table
        reservoir = kernel.Reservoir(len(users), cap, table.positions(exclude))
        if dtype == torch.float32 and len(users) * table.n_kept <= WHOLE_ROW_SCORES:
            # a few users (a live request): one product over the whole catalogue and one kernel call
            # cost less than a product and a call per tile; its fp32 bits may differ from the tiles',
            # which the proof's bound covers (it holds for any summation order)
            scores = torch.mm(users, table.columns())
            reservoir.add(scores, table.n_kept, 0)
            return reservoir.result(dtype)
        scratch = self._buffer(len(users), dtype)
        tiles = table.tiles(dtype)
        users = users.to(dtype)
        for t in range(table.n_tiles):
            torch.mm(users, tiles[t], out=scratch)
            reservoir.add(scratch, table.width(t), t * table.tile)
        return reservoir.result(dtype)

    def exact_top(self, users: torch.Tensor, pos: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The best ``k`` of ``pos`` (n, c) by fp32 score in the kernel's fixed summation order (no
        FMA), ties to the lower position, so the bits do not depend on the other candidates."""
        return kernel.rescore(users, self.table.flat, pos, k)  # a fixed summation order, no FMA

    def leaves_out(self, cap: int) -> bool:
        """Whether ``cap`` candidates leave at least three quarters of the catalogue out (the kernel
        has no lower size limit)."""
        return 0 < 4 * cap <= self.table.n_kept  # the kernel selects from any catalogue size

    def release(self) -> None:
        """Drop the tile score buffers; the next search allocates them again."""
        self._scratch.clear()

    def _buffer(self, n: int, dtype: torch.dtype) -> torch.Tensor:
        """One tile's scores for ``n`` users, reused across chunks of the same size."""
        key = (n, dtype)
        if key not in self._scratch:
            self._scratch.clear()
            self._scratch[key] = torch.empty(n, self.table.tile, device=self.table.device, dtype=dtype)
        return self._scratch[key]
