"""The one interface of exact search: :class:`InnerProductIndex`.

It prepares the items (:class:`~recsys_lib.search.table.ItemTable`), picks a candidate scan
(:class:`~recsys_lib.search.fused.FusedScan` on CPUs where the kernel is built, else
:class:`~recsys_lib.search.tensor.TensorScan`) and the scan's precision, and returns what
:func:`~recsys_lib.search.proof.certified_top` proves. bf16 scans run where bf16 products are
native (AVX512-BF16, AMX), 2-5 times cheaper than fp32; which precision is faster depends on the
CPU, the catalogue and k, so the index times both on its first chunks and keeps the faster
(:meth:`InnerProductIndex.path`): both return the same bytes.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch

from recsys_lib.search import tensor
from recsys_lib.search.fused import FusedScan, fused_usable
from recsys_lib.search.proof import certified_top, spare
from recsys_lib.search.table import ItemTable, Scan

_TRIALS = 3
"""Chunks run on each path before ``precision="auto"`` settles on the faster one for a k. The first
of each pays for allocating its buffers and is not counted; the faster of the others is (one
sample alone misled the choice once in a benchmark, on a hiccup)."""


def default_device() -> torch.device:
    """The GPU where one is present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class SearchStats:
    """What an index's searches did, per path (``"bf16"``, ``"fp32"``): rows searched, and rows
    whose candidates the proof could not certify (near-ties within the scan's error), which were
    scored in full. Rescoring keeps results exact; its share is what a precision costs."""

    rows: Counter[str] = field(default_factory=Counter)
    rescored: Counter[str] = field(default_factory=Counter)

    def add(self, path: str, rows: int, rescored: int) -> None:
        """Count one search of ``rows`` rows on ``path``, ``rescored`` of them scored in full."""
        self.rows[path] += rows
        self.rescored[path] += rescored

    def rescored_share(self, path: str | None = None) -> float:
        """Rescored rows over searched rows, on ``path`` or on all paths together (0 before any)."""
        rows = self.rows[path] if path else self.rows.total()
        rescored = self.rescored[path] if path else self.rescored.total()
        return rescored / rows if rows else 0.0


class InnerProductIndex:
    """Item vectors prepared for exact top-k search by ``user_vector . item_vector (+ item_bias)``.

    ``allowed`` (bool, n_items) drops items that may never be returned (unavailable products)
    before scoring, so they cost nothing. ``device`` defaults to :func:`default_device`.
    ``fused`` picks the scan (default: the compiled kernel on CPU where it is built, else the
    tensor scan); ``tile`` the items scored per product (default 512 fused, 2,048 tensor, the whole
    catalogue on a GPU); ``precision`` ``"auto"`` (time both where bf16 pays), ``"fp32"`` or
    ``"bf16"``. Not thread-safe: searches score into buffers the scan keeps, so run one search at
    a time.
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
        self.fused = fused if fused is not None else fused_usable(self.device, self.n_items)
        if tile is None:  # a fused tile's scores stay in a core's cache; the tensor path takes fewer, larger ones,
            tile = FusedScan.TILE if self.fused else tensor.TILE  # and a GPU the whole catalogue in one product
            tile = len(vectors) if self.device.type == "cuda" else tile
        self.precision = precision
        self.bf16 = _bf16_pays_off(self.device, self.dim) if precision == "auto" else precision == "bf16"
        self.table = ItemTable(vectors, allowed, self.device, tile, bf16=self.bf16)
        self.n_kept = self.table.n_kept
        self.scan: Scan = FusedScan(self.table) if self.fused else tensor.TensorScan(self.table)
        self._trials: dict[tuple[int, str], list[float]] = {}  # (k, path) -> seconds per user
        self.stats = SearchStats()

    def search(
        self, user_vectors: np.ndarray | torch.Tensor, k: int, exclude: sp.csr_matrix | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items of each of ``user_vectors`` (n, d), best first, skipping ``exclude``'s
        non-zeros (n, n_items). Returns ``(items int64 (n, k) padded -1, scores float32 (n, k)
        padded -inf)``, equal to a full sort by the reported score (ties to the lower item index).
        Memory: one score buffer (a tile's on the fused scan, else ``n x n_items``), kept for the
        next call of the same size, so pick ``n`` to fit."""
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
            dtype = torch.bfloat16 if path == "bf16" else torch.float32
            idx, val, n_open = certified_top(self.scan, users, k, dtype, exclude)
            self.stats.add(path, n, n_open)
            items = self.table.keep[idx]  # position among kept -> item index; -1 stays -1
        found = items.cpu().numpy(), val.cpu().numpy()
        if self._deciding(k):
            self._trials.setdefault((k, path), []).append((time.perf_counter() - started) / n)
        return found

    def score(self, user_vectors: np.ndarray | torch.Tensor, items: np.ndarray) -> np.ndarray:
        """The scores :meth:`search` would report for ``items`` (n, c; item indices, -1 = none,
        each at most once per row) of each of ``user_vectors`` (n, d), bit for bit: float32 (n, c),
        -inf for -1 and for items not allowed. For re-ranking a given list by the search's scores."""
        items = np.asarray(items, dtype=np.int64)
        n, c = items.shape
        out = np.full((n, c), -np.inf, dtype=np.float32)
        if n == 0 or c == 0 or self.n_kept == 0:
            return out
        users = torch.as_tensor(user_vectors, dtype=torch.float32).to(self.device)
        if self.has_bias:
            users = torch.cat([users, torch.ones(n, 1, device=self.device)], dim=1)
        pos = self.table.position_of(items)
        with torch.no_grad():
            found_t, val_t = self.scan.exact_top(users, torch.from_numpy(pos).to(self.device), c)
        found, val = found_t.cpu().numpy(), val_t.cpu().numpy()
        rows = np.repeat(np.arange(n), c).reshape(n, c)
        scored = found >= 0  # back from (score-sorted) positions to the caller's order
        lookup = dict(zip(zip(rows[scored], found[scored], strict=True), val[scored], strict=True))
        for i, j in zip(*np.nonzero(pos >= 0), strict=True):
            out[i, j] = lookup[(i, pos[i, j])]
        return out

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

    def release(self) -> None:
        """Free the score buffers kept for the next search; the next search allocates again."""
        self.scan.release()

    def _both_paths(self, k: int) -> bool:
        """Whether either path may serve ``k`` (bf16 hardware, a scan that leaves items out)."""
        cap = min(k + spare(torch.bfloat16, k), self.n_kept)
        return self.bf16 and self.scan.leaves_out(cap)

    def _deciding(self, k: int) -> bool:
        """Whether searches for ``k`` are still timed: both paths eligible, trials unfinished."""
        if self.precision != "auto" or not self._both_paths(k):
            return False
        return any(len(self._trials.get((k, p), ())) < _TRIALS for p in ("fp32", "bf16"))


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
