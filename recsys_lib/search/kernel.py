"""Bindings of the compiled kernel (``_fused_scan.cpp``): fused product-and-selection on CPU.

A chunk of users is scored one item tile at a time into a buffer small enough to stay in cache
(``torch.mm``), and each tile goes straight to a per-user reservoir of the best (score, position)
pairs (:class:`Reservoir`), rejecting 128 bf16 or 64 fp32 scores at a time against the user's
running threshold. The score matrix is never written to memory, which is what bounds the
whole-chunk method on a CPU (measured: a d = 64 product runs at the speed of storing its output).
:func:`rescore` then computes the candidates' exact fp32 scores in a fixed order. Built by ``pip
install`` as an optional extension and loaded with ``ctypes``; where it could not be built (no C++
compiler) or does not load, :func:`available` is false and
:class:`~recsys_lib.search.index.InnerProductIndex` takes its tensor path instead.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.machinery
import logging
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

log = logging.getLogger(__name__)

_P, _I = ctypes.c_void_p, ctypes.c_int64
_NO_KEY = np.iinfo(np.int64).min
_ROOM = 2
"""A user's reservoir holds ``_ROOM * cap`` entries; when full it is cut back to the best ``cap``
(one ``nth_element``) and its threshold rises. 3 and 4 measured no faster (fewer cuts, but a
staler threshold lets more scores in)."""


@functools.cache
def _library() -> ctypes.CDLL | None:
    here = Path(__file__).parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = here / f"_fused_scan{suffix}"
        if path.exists():
            break
    else:
        log.info("fused top-k kernel not built (no C++ compiler at install?): using the tensor path")
        return None
    torch.empty(0)  # torch (and its OpenMP runtime) first: the kernel binds to the same libgomp
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as error:  # built elsewhere, or its runtime is missing: slower, still correct
        log.warning("fused top-k kernel %s does not load (%s): using the tensor path", path.name, error)
        return None
    for name in ("scan_tile_bf16", "scan_tile_f32"):
        getattr(lib, name).argtypes = [_P, _I, _I, _I, _I, _P, _P, _P, _P, _P, _P, _I, _I]
        getattr(lib, name).restype = None
    lib.finish.argtypes = [_P, _I, _P, _P, _I, _I, _P, _P, _P]
    lib.finish.restype = None
    lib.rescore.argtypes = [_P, _I, _I, _P, _P, _I, _I, _P, _P, _P]
    lib.rescore.restype = None
    return lib


def available() -> bool:
    """Whether the compiled kernel is installed."""
    return _library() is not None


class Reservoir:
    """The best ``cap`` (score, position) pairs of each of ``n`` users over tiles fed in order.

    ``exclude``: (n, positions) CSR of positions never to return (history), or None. Ties go to
    the lower position, so with exact scores the result equals a stable full sort.
    """

    def __init__(self, n: int, cap: int, exclude: sp.csr_matrix | None):
        lib = _library()
        if lib is None:
            raise RuntimeError("the fused top-k kernel is not built")
        if cap < 1:
            raise ValueError(f"cap must be at least 1, got {cap}")
        self._lib, self.n, self.cap = lib, n, cap
        if exclude is None:
            exclude = sp.csr_matrix((n, 1), dtype=np.int8)
        if exclude.shape[0] != n:  # the kernel reads one row of it per user
            raise ValueError(f"exclude has {exclude.shape[0]} rows for {n} users")
        exclude = exclude.tocsr()
        if not exclude.has_sorted_indices:  # the kernel walks each row's positions in increasing order
            exclude = exclude.sorted_indices()
        self._ex_ptr = np.ascontiguousarray(exclude.indptr, dtype=np.int64)
        self._ex_pos = np.ascontiguousarray(exclude.indices, dtype=np.int64)
        self._cursor = self._ex_ptr[:-1].copy()
        self.room = _ROOM * cap
        self._entries = np.empty((n, self.room), dtype=np.int64)
        self._count = np.zeros(n, dtype=np.int64)
        self._threshold = np.full(n, _NO_KEY, dtype=np.int64)
        self._state = [
            a.ctypes.data
            for a in (self._ex_ptr, self._ex_pos, self._cursor, self._entries, self._count, self._threshold)
        ]

    def add(self, scores: torch.Tensor, n_valid: int, base: int) -> None:
        """Take the first ``n_valid`` columns of ``scores`` (n, width), bf16 or fp32 on CPU and
        row-contiguous, as positions ``base, base + 1, ...``."""
        # the kernel reads raw memory through these strides: a wrong shape would read out of bounds
        if scores.device.type != "cpu" or scores.stride(1) != 1 or len(scores) != self.n:
            raise ValueError(
                f"scan tile must be row-contiguous on the CPU with {self.n} rows, got {tuple(scores.shape)} "
                f"on {scores.device} with strides {scores.stride()}"
            )
        if scores.dtype not in (torch.bfloat16, torch.float32) or not 0 <= n_valid <= scores.shape[1]:
            raise ValueError(
                f"scan tile must be bf16 or fp32 with 0 <= n_valid <= {scores.shape[1]}, got {scores.dtype}, {n_valid}"
            )
        scan = self._lib.scan_tile_bf16 if scores.dtype == torch.bfloat16 else self._lib.scan_tile_f32
        scan(scores.data_ptr(), self.n, scores.stride(0), n_valid, base, *self._state, self.cap, self.room)

    def result(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(positions int64 (n, cap) -1 padded, scores float32 (n, cap) -inf padded, left_out
        bool (n,))`` best first; ``left_out`` tells whether any eligible position is missing
        (every one of those scores at most the last returned one)."""
        pos = np.empty((self.n, self.cap), dtype=np.int64)
        keys = np.empty((self.n, self.cap), dtype=np.int64)
        left_out = np.empty(self.n, dtype=np.uint8)
        self._lib.finish(
            self._entries.ctypes.data, self.n, self._count.ctypes.data, self._threshold.ctypes.data,
            self.cap, self.room, pos.ctypes.data, keys.ctypes.data, left_out.ctypes.data,
        )  # fmt: skip
        return torch.from_numpy(pos), _scores_of(keys, dtype), torch.from_numpy(left_out.astype(bool))


def rescore(users: torch.Tensor, table: torch.Tensor, pos: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact fp32 scores of each user's candidate positions ``pos`` (n, c; -1 = none) against rows
    of ``table`` (m, d), and the best ``k``: ``(positions int64 (n, k) -1 padded, scores float32
    (n, k) -inf padded)``, by score then lower position. A score's bits depend only on the user and
    the item (one fixed summation order, no FMA contraction), never on the other candidates or the
    CPU, so two searches that select differently still report identical scores."""
    lib = _library()
    if lib is None:
        raise RuntimeError("the fused top-k kernel is not built")
    vectors = np.ascontiguousarray(users.cpu().numpy(), dtype=np.float32)
    table = table.cpu()
    if (
        table.dtype != torch.float32
        or not table.is_contiguous()
        or table.ndim != 2
        or table.shape[1] != vectors.shape[1]
    ):
        raise ValueError(
            f"rescore needs a contiguous fp32 table of width {vectors.shape[1]}, got {table.dtype} {tuple(table.shape)}"
        )
    candidates = np.ascontiguousarray(pos.cpu().numpy(), dtype=np.int64)
    if candidates.ndim != 2 or len(candidates) != len(vectors):
        raise ValueError(f"rescore needs one row of candidates per user ({len(vectors)}), got {candidates.shape}")
    if candidates.size and (candidates.min() < -1 or candidates.max() >= len(table)):
        raise ValueError(f"rescore candidates must be -1 or positions below {len(table)}")  # native reads them
    n, c = candidates.shape
    scratch = np.empty((n, max(c, 1)), dtype=np.int64)
    out_pos = np.empty((n, k), dtype=np.int64)
    keys = np.empty((n, k), dtype=np.int64)
    lib.rescore(
        vectors.ctypes.data, n, vectors.shape[1], table.data_ptr(), candidates.ctypes.data, c, k,
        scratch.ctypes.data, out_pos.ctypes.data, keys.ctypes.data,
    )  # fmt: skip
    return torch.from_numpy(out_pos), _scores_of(keys, torch.float32)


def _scores_of(keys: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """Integer keys back to float32 scores (the inverse of the kernel's ``key_of``); missing -> -inf."""
    bits = 16 if dtype == torch.bfloat16 else 32
    magnitude = (1 << (bits - 1)) - 1
    raw = np.where(keys < 0, keys ^ magnitude, keys) & ((1 << bits) - 1)  # back to sign-magnitude bits
    if bits == 16:
        raw = raw << 16  # a bf16 is the top half of a float32
    scores = raw.astype(np.uint32).view(np.float32)
    return torch.from_numpy(np.where(keys == _NO_KEY, np.float32(-np.inf), scores))
