"""Exact top-k by inner product over a whole catalogue, at close to matrix-multiply speed.

Scoring ``n`` users against ``m`` items is one matrix product; picking each row's top-k out of ``m``
scores costs a selection over every score, and on a CPU that selection (``torch.topk``) costs about
as much as the product itself. FAISS's flat index hides it by scanning tiles that stay in cache with
a heap per query. Every search here runs in three steps, the same for both precisions:

1. **scan** for candidates (bf16: ``2k + 16``, fp32: ``k + 16``): every eligible item left out
   scores, in the scan's precision, at most the lowest candidate's ``low``;
2. **rank** the candidates by their exact fp32 score (:meth:`InnerProductIndex._exact_top`), whose
   bits depend only on the user and the item, then by lower item index;
3. **prove** each row: a left-out item's exact score is below ``low + E`` (``E`` bounds the scan's
   error plus the exact score's: :data:`BF16_ERROR` or :func:`_fp32_error`, times ``|u| max|v|``),
   so a row whose k-th exact score is above that is the full sort's answer; open rows (near-ties,
   rare) are scored in full.

Results equal a full sort by the reported score (best first, ties to the lower item index, padding
-1 / -inf), and the two precisions return the same bytes; which is faster depends on the CPU, the
catalogue and k, so the index times both on its first chunks and keeps the faster
(:meth:`InnerProductIndex.path`). Two scans:

**Fused** (CPU, the default where the compiled kernel is built, :mod:`~recsys_lib.models.fused_scan`):
each tile of 512 items is scored into one small buffer and a C++ kernel keeps a reservoir of the
best (score, position) pairs per user while the tile is in cache, rejecting 128 scores at a time
against the user's threshold. The score matrix never goes to memory.

**Tensor** (GPUs, and CPUs without the kernel). On a GPU: one product over the whole catalogue
per chunk, exclusions set to -inf, and ``torch.topk`` (ties cut anywhere: the proof below does
not need an order among candidates). On a CPU: pruning with block maxima, in a few whole-chunk
tensor operations:

1. scores land one item tile at a time in ``(tiles, n, tile)``; excluded items are set to -inf and
   the maximum of every block of 8 items is taken while the tile is still in cache (a block is
   8 strided positions of a tile, so its maximum is an elementwise maximum of contiguous slices);
2. the maximum of every group of 8 blocks (64 items) is taken, again elementwise;
3. the c groups with the largest maxima hold every one of the top c items (the c-th largest group
   maximum is a lower bound of the c-th largest score, since the c maxima are c distinct scores);
   inside them, the c blocks with the largest maxima do too, by the same argument;
4. the top c are selected among those c blocks' 8c scores.

bf16 scans run where bf16 products are native (AVX512-BF16, AMX), 2-5 times cheaper than fp32.
"""

from __future__ import annotations

import functools
import time

import numpy as np
import scipy.sparse as sp
import torch

from recsys_lib.models import fused_scan
from recsys_lib.models.topk import topk_excluding

BLOCK = 8
"""Items per block (first level of maxima)."""
GROUP = 8
"""Blocks per group (second level): a group spans ``BLOCK * GROUP`` = 64 items."""
_SPAN = BLOCK * GROUP
BF16_ERROR = 2.0**-6
"""Bound on ``|bf16 score - true score| / (|u| |v|)``: both inputs rounded to bf16 (2^-8 relative
each, so 2^-7 + 2^-16 on every product), products summed in fp32 (d 2^-24 <= 2^-12 for d <= 4096),
the output rounded to bf16 (2^-8 of a score at most ``|u| |v|``); by Cauchy-Schwarz the sum of
``|u_j v_j|`` is at most ``|u| |v|``. Total below 0.0121 < 2^-6; the rest covers the exact
score's own fp32 error (``2 gamma_d``, under 2^-10 for d <= 4096)."""
_TRIALS = 3
"""Chunks run on each path before ``precision="auto"`` settles on the faster one for a k. The first
of each pays for allocating its buffers and is not counted; the faster of the others is (one
sample alone misled the choice once in a benchmark, on a hiccup)."""
_FUSED_TILE = 512
"""Items per tile for the compiled kernel: 1,024 users x 512 bf16 scores is 1 MB, half of it per
core, so a tile is selected from while in L2 (measured 100k items, k = 10: 512 > 1,024 = 2,048)."""
_WHOLE_ROWS = 1 << 22
"""Rows a proof leaves open (near-ties, rare) are scored in full, as many at a time as keep this
many exact scores (or, on the tensor path, gathered vector components) in flight."""
_PRUNE_FACTOR = 2
"""Prune only when there are at least this many times ``k + 1`` groups of 64 items; below, sort
the row (pruning then saves little, and needs more than ``k`` groups anyway)."""


def _fp32_error(dim: int) -> float:
    """Bound on ``|fp32 score - exact fp32 score| / (|u| |v|)`` between a product's score and
    :meth:`InnerProductIndex._exact_top`'s, whatever the order of either sum: each is within
    ``gamma_d = d 2^-24 / (1 - d 2^-24)`` of the true dot product (Cauchy-Schwarz), so twice that,
    with 10% to spare."""
    gamma = dim * 2.0**-24 / (1 - dim * 2.0**-24)
    return 2.2 * gamma


def default_device() -> torch.device:
    """The GPU where one is present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class InnerProductIndex:
    """Item vectors prepared for exact top-k search by ``user_vector . item_vector (+ item_bias)``.

    ``allowed`` (bool, n_items) drops items that may never be returned (unavailable products)
    before scoring, so they cost nothing. ``device`` defaults to :func:`default_device`.
    ``fused`` picks the implementation (default: the compiled kernel on CPU where it is built, else
    the tensor path); ``tile`` the items scored per product (default 512 fused, 2,048 tensor);
    ``precision`` ``"auto"`` (time both where bf16 pays), ``"fp32"`` or ``"bf16"``. Not
    thread-safe: searches score into buffers the index keeps, so run one search at a time.
    """

    def __init__(
        self,
        item_vectors: np.ndarray,
        item_bias: np.ndarray | None = None,
        *,
        allowed: np.ndarray | None = None,
        device: torch.device | str | None = None,
        tile: int | None = None,
        precision: str = "auto",
        fused: bool | None = None,
    ):
        vectors = np.asarray(item_vectors, dtype=np.float32)  # (n_items, d)
        if item_bias is not None:  # fold the bias in: [u, 1] . [v, b] = u . v + b
            vectors = np.hstack([vectors, np.asarray(item_bias, dtype=np.float32).reshape(-1, 1)])
        self.n_items, self.dim = vectors.shape
        self.has_bias = item_bias is not None
        self.device = torch.device(device) if device is not None else default_device()
        if fused is None:  # the kernel packs a position in 32 bits
            fused = self.device.type == "cpu" and fused_scan.available() and self.n_items < 1 << 32
        self.fused = fused
        if tile is None:  # a fused tile's scores stay in a core's cache; the tensor path takes fewer, larger ones,
            tile = _FUSED_TILE if fused else 2048  # and a GPU the whole catalogue in one product
            tile = len(vectors) if self.device.type == "cuda" else tile
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
        self._flat = torch.from_numpy(padded).to(self.device)  # (positions, d) for exact re-scoring
        self._max_norm = float(np.linalg.norm(padded, axis=1).max(initial=0.0))
        self._buffers_by_n: dict[tuple[int, torch.dtype], tuple[torch.Tensor, ...]] = {}
        self.precision = precision
        self.bf16 = _bf16_pays_off(self.device, self.dim) if precision == "auto" else precision == "bf16"
        self._tiles_bf16 = self._tiles.to(torch.bfloat16) if self.bf16 else self._tiles
        self._trials: dict[tuple[int, str], list[float]] = {}  # (k, path) -> seconds per user

    def search(
        self, user_vectors: np.ndarray | torch.Tensor, k: int, exclude: sp.csr_matrix | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items of each of ``user_vectors`` (n, d), best first, skipping ``exclude``'s
        non-zeros (n, n_items). Returns ``(items int64 (n, k) padded -1, scores float32 (n, k)
        padded -inf)``. Memory: one score buffer (a tile's on the fused path, else ``n x n_items``),
        kept for the next call of the same size, so pick ``n`` to fit."""
        n = len(user_vectors)
        if exclude is not None and exclude.shape != (n, self.n_items):
            raise ValueError(f"exclude has shape {exclude.shape}, expected {(n, self.n_items)} (users x items)")
        if k < 1 or n == 0 or self.n_kept == 0:
            return np.full((n, max(k, 0)), -1, dtype=np.int64), np.full((n, max(k, 0)), -np.inf, dtype=np.float32)
        users = torch.as_tensor(user_vectors, dtype=torch.float32).to(self.device)
        if self.has_bias:
            users = torch.cat([users, torch.ones(n, 1, device=self.device)], dim=1)
        path = self.path(k)
        started = time.perf_counter()
        with torch.no_grad():
            idx, val = self._certified(users, k, torch.bfloat16 if path == "bf16" else torch.float32, exclude)
            items = self._keep[idx]  # position among kept -> item index; -1 stays -1
        found = items.cpu().numpy(), val.cpu().numpy()
        if self._deciding(k):
            self._trials.setdefault((k, path), []).append((time.perf_counter() - started) / n)
        return found

    def path(self, k: int) -> str:
        """How the next search for ``k`` will run: ``"bf16"`` (certified bf16 scan) or ``"fp32"``.

        With ``precision="auto"`` on hardware where bf16 products are fast, the first searches try
        each path on :data:`_TRIALS` chunks and the rest take the one that was faster per user here
        (its best chunk after the first). Which wins depends on the CPU (bf16 units, matrix
        engines), the catalogue and ``k``; both return the same bytes, so only time is at stake.
        """
        if not self._both_paths(k):
            return "fp32"
        if self.precision == "bf16":
            return "bf16"
        for path in ("fp32", "bf16"):  # one path's trials after the other: one buffer at a time; bf16,
            if len(self._trials.get((k, path), ())) < _TRIALS:  # the usual winner, last: no reallocation
                return path
        return min(("bf16", "fp32"), key=lambda p: min(self._trials[(k, p)][1:]))

    def _both_paths(self, k: int) -> bool:
        """Whether either path may serve ``k`` (bf16 hardware, a catalogue large enough to prune)."""
        candidates = min(2 * k + 16, self.n_kept)
        if self.fused:  # the kernel selects from any catalogue; bf16 needs room to leave items out
            return self.bf16 and 0 < 4 * candidates <= self.n_kept
        return self.bf16 and self._prunable(candidates)

    def _deciding(self, k: int) -> bool:
        """Whether searches for ``k`` are still timed: both paths eligible, trials unfinished."""
        if self.precision != "auto" or not self._both_paths(k):
            return False
        return any(len(self._trials.get((k, p), ())) < _TRIALS for p in ("fp32", "bf16"))

    def _candidates(
        self, users: torch.Tensor, dtype: torch.dtype, cap: int, exclude: sp.csr_matrix | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The best ``cap`` positions per user by ``dtype`` scores, ties cut anywhere: ``(positions
        (n, cap) -1 padded, scores float32 -inf padded, left_out (n,))``, where every eligible
        position left out scores at most the last returned score, and ``left_out`` is false only
        where none was."""
        if self.fused:
            return self._fused(users, dtype, cap, exclude)
        masked = self._mask_by_tile(exclude)
        if self.device.type == "cuda":  # one pass of torch.topk over whole rows costs less than pruning's launches
            scores, _ = self._scan(users, dtype, masked, block_maxima=False)
            full = scores.permute(1, 0, 2).reshape(len(users), -1)[:, : self.n_kept]  # a view with one tile
            val, pos = torch.topk(full, cap, dim=1)
        elif self._prunable(cap):
            scores, block_max = self._scan(users, dtype, masked, block_maxima=True)
            pos, val = self._pruned(scores, block_max, cap)
        else:
            scores, _ = self._scan(users, dtype, masked, block_maxima=False)
            pos, val = self._exact(scores, torch.arange(len(users), device=self.device), cap)
        val = val.float()
        pos = torch.where(torch.isneginf(val), -1, pos)  # excluded items and padding
        return pos, val, ~torch.isneginf(val[:, -1])

    def _prunable(self, k: int) -> bool:
        return self.n_kept >= _PRUNE_FACTOR * _SPAN * (k + 1)

    def _scan(
        self, users: torch.Tensor, dtype: torch.dtype, masked: dict, *, block_maxima: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores ``(tiles, n, tile)`` in ``dtype`` with exclusions and padding at -inf, and (if
        asked) block maxima ``(tiles, n, tile/8)``, one tile at a time so maxima are taken in cache."""
        n = len(users)
        scores, block_max = self._buffers(n, dtype)
        tiles = self._tiles if dtype == torch.float32 else self._tiles_bf16
        users = users.to(dtype)
        pad = self.n_kept - (self.n_tiles - 1) * self.tile
        for t in range(self.n_tiles):
            torch.mm(users, tiles[t], out=scores[t])
            if t == self.n_tiles - 1:
                scores[t, :, pad:] = -torch.inf
            if t in masked:
                rows, cols = masked[t]
                scores[t, rows, cols] = -torch.inf
            if block_maxima:
                torch.amax(scores[t].view(n, BLOCK, self.tile // BLOCK), dim=1, out=block_max[t])
        return scores, block_max

    def _fused(
        self, users: torch.Tensor, dtype: torch.dtype, cap: int, exclude: sp.csr_matrix | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`_candidates` from the compiled kernel (:mod:`~recsys_lib.models.fused_scan`):
        each tile is scored into one small buffer and selected from while in cache; exact, ties to
        the lower position."""
        n = len(users)
        (scratch,) = self._buffers(n, dtype)
        scan = fused_scan.FusedScan(n, cap, self._positions(exclude))
        tiles = self._tiles if dtype == torch.float32 else self._tiles_bf16
        users = users.to(dtype)
        for t in range(self.n_tiles):
            torch.mm(users, tiles[t], out=scratch)
            scan.add(scratch, min(self.tile, self.n_kept - t * self.tile), t * self.tile)
        return scan.result(dtype)

    def _positions(self, exclude: sp.csr_matrix | None) -> sp.csr_matrix | None:
        """``exclude``'s non-zeros as positions among kept items (n, n_kept), sorted per row."""
        if exclude is None or not exclude.nnz:
            return None
        coo = exclude.tocoo()
        cols = self._compact[coo.col]
        keep = (cols >= 0) & (coo.data != 0)
        ones = np.ones(int(keep.sum()), dtype=np.int8)
        return sp.csr_matrix((ones, (coo.row[keep], cols[keep])), shape=(exclude.shape[0], max(self.n_kept, 1)))

    def _certified(
        self, users: torch.Tensor, k: int, dtype: torch.dtype, exclude: sp.csr_matrix | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A scan in ``dtype`` for candidates, their exact scores (:meth:`_exact_top`), and a proof
        per row that nothing left out beats the k-th.

        Every non-candidate's scan score is at most the lowest candidate's, ``low``, so its true
        score is below ``low + E``, ``E`` bounding the scan's error plus the exact score's (bf16:
        :data:`BF16_ERROR`, fp32: :func:`_fp32_error`, times ``|u| max |v|``). A row whose k-th
        exact score is above that is exact; the others (near-ties, rare) are scored in full. So
        both precisions report the same bytes: the scan only picks candidates, the exact score
        ranks and is reported.
        """
        spare = k + 16 if dtype == torch.bfloat16 else 16  # bf16 scores are coarser: more candidates
        pos, approx, left_out = self._candidates(users, dtype, min(k + spare, self.n_kept), exclude)
        low = torch.where(left_out, approx[:, -1], -torch.inf)  # -inf: nothing eligible left out
        idx, val = self._exact_top(users, pos, k)
        bound = BF16_ERROR if dtype == torch.bfloat16 else _fp32_error(self.dim)
        error = bound * users.norm(dim=1) * self._max_norm
        proven = (val[:, -1] > low + error) | torch.isneginf(low)  # nothing else can reach the k-th
        redo = torch.nonzero(~proven).flatten()
        if len(redo):
            rows = redo.cpu().numpy()
            idx[redo], val[redo] = self._whole_rows(users[redo], k, exclude[rows] if exclude is not None else None)
        return idx, val

    def _whole_rows(
        self, users: torch.Tensor, k: int, exclude: sp.csr_matrix | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`_exact_top` over every eligible position, a few rows at a time (within
        :data:`_WHOLE_ROWS` exact scores, vectors included on the tensor path)."""
        positions = self._positions(exclude)
        per_batch = max(1, _WHOLE_ROWS // (self.n_kept * (1 if self.fused else self.dim)))
        found = []
        for lo in range(0, len(users), per_batch):
            hi = min(lo + per_batch, len(users))
            pos = torch.arange(self.n_kept, device=self.device).repeat(hi - lo, 1)
            if positions is not None:
                coo = positions[lo:hi].tocoo()
                pos[torch.from_numpy(coo.row).long(), torch.from_numpy(coo.col).long()] = -1
            found.append(self._exact_top(users[lo:hi], pos, k))
        return torch.cat([f[0] for f in found]), torch.cat([f[1] for f in found])

    def _exact_top(self, users: torch.Tensor, pos: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The best ``k`` of candidate positions ``pos`` (n, c; -1 = none) by exact fp32 score, then
        lower position. A score's bits depend only on the user and the item, never on the other
        candidates, so a chunk's rows are the same bytes whichever path selected them: the path is
        picked by timing (:meth:`path`), and a retried shard must restage what its first try
        staged. Fused: the kernel's fixed-order dot; tensor: one ``vecdot`` per item (a bmm's bits
        change with ``c``)."""
        if self.fused:
            return fused_scan.rescore(users, self._flat, pos, k)
        vectors = torch.index_select(self._flat, 0, pos.clamp(min=0).flatten()).view(*pos.shape, -1)
        exact = torch.where(pos < 0, -torch.inf, torch.linalg.vecdot(vectors, users[:, None, :]))
        val, pos = _by_score_then_position(exact, torch.where(pos < 0, self.n_kept, pos))
        pos, val = torch.where(pos >= self.n_kept, -1, pos)[:, :k], val[:, :k]
        if pos.shape[1] < k:  # fewer candidates than k: pad
            short = k - pos.shape[1]
            pos = torch.cat([pos, pos.new_full((len(pos), short), -1)], dim=1)
            val = torch.cat([val, val.new_full((len(val), short), -torch.inf)], dim=1)
        return pos, val

    def release(self) -> None:
        """Free the score buffers kept for the next search; the next search allocates again."""
        self._buffers_by_n.clear()

    def _buffers(self, n: int, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        """Score and block-maximum buffers for ``n`` users, reused across calls: allocating (and
        page-faulting) a fresh ``n x n_items`` buffer per chunk costs more than the product. One
        pair is kept at a time, so memory stays at one chunk's scores."""
        key = (n, dtype)
        if key not in self._buffers_by_n:
            self._buffers_by_n.clear()  # before allocating: never two chunks' buffers at once
            self._buffers_by_n[key] = self._new_buffers(n, dtype)
        return self._buffers_by_n[key]

    def _new_buffers(self, n: int, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        if self.fused:  # one tile's scores
            return (torch.empty(n, self.tile, device=self.device, dtype=dtype),)
        return (
            torch.empty(self.n_tiles, n, self.tile, device=self.device, dtype=dtype),
            torch.empty(self.n_tiles, n, self.tile // BLOCK, device=self.device, dtype=dtype),
        )

    def _mask_by_tile(self, exclude: sp.csr_matrix | None) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
        """``exclude``'s non-zeros among kept items as ``{tile: (rows, offsets in the tile)}``."""
        positions = self._positions(exclude)
        if positions is None:
            return {}
        coo = positions.tocoo()
        rows, cols = coo.row.astype(np.int64), coo.col.astype(np.int64)
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
        """``k`` candidate positions and scores by block and group maxima (see the module
        docstring), best first: ties are cut anywhere, but no item left out scores above the last
        one returned (what :meth:`_certified` needs).

        Blocks and groups are strided inside a tile (block ``j`` of tile ``t`` holds positions
        ``t * tile + j + m * tile / 8``, m < 8), so their maxima are elementwise maxima of
        contiguous slices, which vectorise."""
        nt, n, tile = scores.shape
        blocks_per_tile = tile // BLOCK
        groups_per_tile = blocks_per_tile // GROUP
        rows = torch.arange(n, device=self.device)[:, None]
        grouped = block_max.view(nt, n, GROUP, groups_per_tile)
        group_max = grouped.amax(dim=2).permute(1, 0, 2).reshape(n, nt * groups_per_tile)  # (n, groups)

        groups = torch.topk(group_max, k, dim=1).indices  # the k groups holding every top-k item
        g_tile, g_off = groups // groups_per_tile, groups % groups_per_tile
        candidates = grouped[g_tile, rows, :, g_off].reshape(n, k * GROUP)  # their blocks' maxima
        members = torch.arange(GROUP, device=self.device) * groups_per_tile  # block offsets in a group
        block_ids = (g_tile * blocks_per_tile + g_off)[:, :, None] + members  # (n, k, GROUP)
        block_ids = block_ids.reshape(n, k * GROUP)

        picked = torch.topk(candidates, k, dim=1).indices  # the k blocks holding every top-k item
        blocks = block_ids.gather(1, picked)
        b_tile, b_off = blocks // blocks_per_tile, blocks % blocks_per_tile
        values = scores.view(nt, n, BLOCK, blocks_per_tile)[b_tile, rows, :, b_off].reshape(n, k * BLOCK)
        offsets = torch.arange(BLOCK, device=self.device) * blocks_per_tile
        positions = ((b_tile * tile + b_off)[:, :, None] + offsets).reshape(n, k * BLOCK)

        val, j = torch.topk(values, k, dim=1)
        val, pos = _by_score_then_position(val.float(), positions.gather(1, j))
        return pos, val


def _by_score_then_position(val: torch.Tensor, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of (score, position) pairs sorted by score descending, equal scores by lower position."""
    order = torch.argsort(pos, dim=1)
    val, pos = val.gather(1, order), pos.gather(1, order)
    order = torch.argsort(-val, dim=1, stable=True)
    return val.gather(1, order), pos.gather(1, order)


@functools.cache
def _bf16_pays_off(device: torch.device, dim: int) -> bool:
    """Whether a bf16 matrix product is clearly faster than fp32 here (CPUs with native bf16 dot
    products: 5x on AVX512-BF16). Not on GPUs: cuBLAS may reduce bf16 sums in reduced precision,
    which the error bound does not cover, and fp32 is fast there anyway. Probed once per process
    and size (a few milliseconds); either path gives the same results."""
    if device.type != "cpu":
        return False
    a, b = torch.randn(256, dim), torch.randn(dim, 4096)
    timings = {}
    for dtype in (torch.float32, torch.bfloat16):
        x, y = a.to(dtype), b.to(dtype)
        torch.mm(x, y)  # warm up
        start = time.perf_counter()
        for _ in range(3):
            torch.mm(x, y)
        timings[dtype] = time.perf_counter() - start
    return timings[torch.bfloat16] * 1.5 < timings[torch.float32]
