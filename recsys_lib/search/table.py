"""The items a search may return, laid out for scanning, and the contract every scan meets."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import scipy.sparse as sp
import torch

SPAN = 64
"""Items per pruning group of the tensor path (8 blocks of 8); tiles are a multiple of it."""


class ItemTable:
    """Item vectors (bias already folded in) of the items a search may return, in tiles.

    Items not ``allowed`` (unavailable products) are dropped here, so they cost nothing; the rest
    are *positions* ``0 .. n_kept - 1``. ``tiles`` (fp32, and bf16 where ``bf16``) hold them as
    ``(n_tiles, d, tile)`` with zero padding; ``flat`` as ``(positions, d)`` for exact rescoring.
    """

    def __init__(self, vectors: np.ndarray, allowed: np.ndarray | None, device: torch.device, tile: int, *, bf16: bool):
        n_items, dim = vectors.shape  # (n_items, d)
        self.n_items: int = n_items
        self.dim: int = dim
        self.device = device
        keep = np.arange(self.n_items) if allowed is None else np.flatnonzero(np.asarray(allowed, dtype=bool))
        self.n_kept = len(keep)
        self.keep = torch.from_numpy(np.append(keep, -1).astype(np.int64)).to(device)  # [-1] maps -1 -> -1
        self._compact = np.full(self.n_items, -1, dtype=np.int64)  # item -> position among kept
        self._compact[keep] = np.arange(self.n_kept)
        self.tile = max(SPAN, min(tile, -(-self.n_kept // SPAN) * SPAN))  # a multiple of 64
        self.n_tiles = max(1, -(-self.n_kept // self.tile))
        padded = np.zeros((self.n_tiles * self.tile, self.dim), dtype=np.float32)
        padded[: self.n_kept] = vectors[keep]
        tiles = padded.reshape(self.n_tiles, self.tile, self.dim).transpose(0, 2, 1)  # (tiles, d, tile)
        self._tiles = torch.from_numpy(np.ascontiguousarray(tiles)).to(device)
        self._tiles_bf16 = self._tiles.to(torch.bfloat16) if bf16 else self._tiles
        self.flat = torch.from_numpy(padded).to(device)  # (positions, d) for exact re-scoring
        self.max_norm = float(np.linalg.norm(padded, axis=1).max(initial=0.0))
        self._columns: torch.Tensor | None = None

    def columns(self) -> torch.Tensor:
        """``(d, n_kept)`` fp32, contiguous: the whole catalogue as one product's right operand
        (a few users at a time: 1.6x faster than ``flat.T`` for one user at 100k items). Built on
        first use, so batch searches, which go tile by tile, never hold this second copy."""
        if self._columns is None:
            self._columns = self.flat[: self.n_kept].T.contiguous()
        return self._columns

    def tiles(self, dtype: torch.dtype) -> torch.Tensor:
        """``(n_tiles, d, tile)`` in ``dtype`` (fp32, or bf16 when the table was built with it)."""
        return self._tiles if dtype == torch.float32 else self._tiles_bf16

    def width(self, t: int) -> int:
        """Positions of tile ``t`` that are items (the last tile is padded)."""
        return min(self.tile, self.n_kept - t * self.tile)

    def position_of(self, items: np.ndarray) -> np.ndarray:
        """Position of each item index (any shape; -1 = none), -1 where the item was dropped."""
        items = np.asarray(items, dtype=np.int64)
        return np.where(items >= 0, self._compact[np.clip(items, 0, None)], -1)

    def positions(self, exclude: sp.csr_matrix | None) -> sp.csr_matrix | None:
        """``exclude``'s non-zeros (users x items) as positions among kept items (n, n_kept), sorted
        per row; None when nothing is excluded."""
        if exclude is None or not exclude.nnz:
            return None
        coo = exclude.tocoo()
        cols = self._compact[coo.col]
        keep = (cols >= 0) & (coo.data != 0)
        ones = np.ones(int(keep.sum()), dtype=np.int8)
        return sp.csr_matrix((ones, (coo.row[keep], cols[keep])), shape=(exclude.shape[0], max(self.n_kept, 1)))


class Scan(Protocol):
    """One way to find candidates in an :class:`ItemTable` and score them exactly.

    :func:`~recsys_lib.search.proof.certified_top` turns any scan into an exact top-k.
    """

    table: ItemTable

    @property
    def exact_row_width(self) -> int:
        """Numbers one user's whole-row exact rescoring holds in memory (sizes its batches)."""
        ...

    def candidates(
        self, users: torch.Tensor, dtype: torch.dtype, cap: int, exclude: sp.csr_matrix | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The best ``cap`` positions per user by ``dtype`` scores, ties cut anywhere: ``(positions
        (n, cap) -1 padded, scores float32 -inf padded, left_out (n,))``, where every eligible
        position left out scores at most the last returned score, and ``left_out`` is false only
        where none was."""
        ...

    def exact_top(self, users: torch.Tensor, pos: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The best ``k`` of candidate positions ``pos`` (n, c; -1 = none) by exact fp32 score, then
        lower position, padded -1 / -inf. A score's bits must depend only on the user and the item,
        never on the other candidates, so that every path reports the same bytes."""
        ...

    def leaves_out(self, cap: int) -> bool:
        """Whether a scan for ``cap`` candidates leaves enough items out for a cheaper, coarser
        (bf16) scan to pay off."""
        ...

    def release(self) -> None:
        """Free the buffers kept for the next chunk."""
        ...
