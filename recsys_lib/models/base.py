"""The one recommender contract every model implements (DESIGN.md section 6).

A model works in index space: users ``0..n_users-1`` and items ``0..n_items-1`` as assigned by the
feature encoders. It fits on a :class:`~recsys_lib.features.FeatureSet`, scores users against the
whole catalogue given what they did so far (a :class:`~recsys_lib.features.UserHistory` chosen by
the caller: evaluation passes the windows before the one it scores, serving passes everything), and
:meth:`Recommender.recommend` turns scores into top-k lists with excluded items masked. Raw ids,
cold-start fallback and persistence live in :mod:`recsys_lib.serving.bundle`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch

from recsys_lib import schema
from recsys_lib.errors import ModelError
from recsys_lib.search import InnerProductIndex, bounded_chunk, topk_excluding

if TYPE_CHECKING:
    from collections.abc import Callable

    from recsys_lib.config import ModelConfig, TrainConfig
    from recsys_lib.features import FeatureSet, UserHistory
    from recsys_lib.training import RunLogger


EXPLAIN_RECENT = 50  # history items (newest) a vector model's explanation looks among


def closest_history_items(vectors: np.ndarray, recent: np.ndarray, items: np.ndarray) -> np.ndarray:
    """For each recommended item (``items`` (n, k), -1 padding), the item of its row's ``recent``
    history (n, L; -1 padding, newest last) with the largest cosine similarity of ``vectors``
    (n_items, d); -1 where either side is empty. Ties go to the newer history item."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    unit = np.vstack([unit, np.zeros((1, unit.shape[1]), dtype=unit.dtype)]).astype(np.float32)  # row -1: zeros
    similarity = np.einsum("nkd,nld->nkl", unit[items], unit[recent])  # (n, k, L)
    similarity[np.broadcast_to((recent < 0)[:, None, :], similarity.shape)] = -np.inf
    newest_first = similarity[:, :, ::-1]
    best = recent.shape[1] - 1 - np.argmax(newest_first, axis=2)  # (n, k) column in ``recent``
    reasons = np.take_along_axis(recent, best, axis=1)
    empty = (items < 0) | ~np.isfinite(np.max(similarity, axis=2, initial=-np.inf))
    return np.where(empty, -1, reasons).astype(np.int64)


class Recommender(ABC):
    """Base class: subclasses implement ``fit``, ``score_users``, ``state`` and ``from_state``."""

    name: ClassVar[str]
    reason_kind: ClassVar[str] = schema.SIMILAR_ITEM
    """What :meth:`explain`'s reasons mean, as the exports' ``reason_kind`` says it."""
    scores_from_history: ClassVar[bool] = False
    """Whether the model scores a user from their history alone, with no parameters of its own
    (item-kNN, the sequence models, the two-tower): then any item sequence, a new visitor's session
    included, can be scored as a one-row ``UserHistory``. MF and popularity: False."""

    def __init__(self, n_users: int, n_items: int, config: ModelConfig):
        self.n_users = n_users
        self.n_items = n_items
        self.config = config
        self._neighbour_index: tuple[bytes, InnerProductIndex] | None = None  # for similar_items

    @abstractmethod
    def fit(
        self,
        features: FeatureSet,
        train: TrainConfig,
        on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
        logger: RunLogger | None = None,
    ) -> Recommender:
        """Train on ``features.train``; may use ``features.validation`` for per-epoch metrics, which
        a model trained in epochs hands to ``on_epoch_end(epoch, metrics)`` and logs to ``logger``
        (models fitted in one pass use neither)."""

    @abstractmethod
    def score_users(self, user_idx: torch.Tensor, history: UserHistory) -> torch.Tensor:
        """Scores of every item for each user: ``(n,) int64 -> (n, n_items) float32``, higher is better.

        ``history`` covers all ``n_users`` users (row = user_idx); models that do not read it
        (popularity, MF) ignore it."""

    @abstractmethod
    def state(self) -> dict[str, torch.Tensor]:
        """Tensors that fully describe the fitted model (saved with safetensors-compatible dtypes)."""

    @classmethod
    @abstractmethod
    def from_state(cls, n_users: int, n_items: int, config: ModelConfig, state: dict[str, torch.Tensor]) -> Recommender:
        """Rebuild a fitted model from :meth:`state`."""

    def item_vectors(self) -> np.ndarray | None:
        """``(n_items, dim)`` item embeddings where the model has them, else None."""
        return None

    def item_bias(self) -> np.ndarray | None:
        """``(n_items,)`` per-item score offsets where the model has them (MF-BPR), else None."""
        return None

    def user_vectors(self, user_idx: np.ndarray, history: UserHistory) -> np.ndarray | None:
        """``(n, dim)`` user embeddings such that ``user_vectors @ item_vectors.T`` ranks like
        :meth:`score_users` (plus :meth:`item_bias`), where the model has them, else None.

        Where a model has vectors, serving scores with them (an inner-product index), so
        ``user_vectors @ item_vectors.T + item_bias`` must equal :meth:`score_users`."""
        return None

    def similar_items(
        self, item_idx: np.ndarray, k: int, exclude_items: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The ``k`` items nearest each of ``item_idx`` (n,), best first, never the item itself nor
        any of ``exclude_items``: by cosine of the item vectors where the model has them, else None.
        Returns ``(items int64 (n, k) padded -1, scores float32 (n, k) padded -inf)``."""
        vectors = self.item_vectors()
        if vectors is None:
            return None
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit = vectors / np.maximum(norms, 1e-12)
        allowed = np.ones(self.n_items, dtype=bool)
        if exclude_items is not None:
            allowed[np.asarray(exclude_items, dtype=np.int64)] = False
        key = allowed.tobytes()
        if self._neighbour_index is None or self._neighbour_index[0] != key:
            self._neighbour_index = (key, InnerProductIndex(unit, allowed=allowed))
        item_idx = np.asarray(item_idx, dtype=np.int64)
        itself = sp.csr_matrix(
            (np.ones(len(item_idx), np.float32), (np.arange(len(item_idx)), item_idx)),
            shape=(len(item_idx), self.n_items),
        )
        return self._neighbour_index[1].search(unit[item_idx], k, itself)

    def explain(self, user_idx: np.ndarray, items: np.ndarray, history: UserHistory) -> np.ndarray | None:
        """For recommended ``items`` (n, k) of ``user_idx``, the history item each is recommended
        because of ("because you viewed X"), -1 where none, or None if the model cannot say.

        Models with item vectors: among the user's :data:`EXPLAIN_RECENT` newest history items, the
        one whose vector is closest (cosine) to the recommended item's (ties: the newer one)."""
        vectors = self.item_vectors()
        if vectors is None:
            return None
        return closest_history_items(vectors, history.padded(user_idx, EXPLAIN_RECENT), np.asarray(items))

    def recommend(
        self,
        user_idx: np.ndarray,
        k: int,
        history: UserHistory,
        exclude: sp.csr_matrix | None = None,
        chunk_size: int = 4096,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items per user, best first, scored from ``history`` (see :meth:`score_users`).

        ``exclude`` is an ``(n_users, n_items)`` sparse matrix whose non-zeros are never returned
        (items seen in training, unavailable items). Returns ``(items, scores)``, both ``(n, k)``:
        item indices as int64 padded with -1, scores as float32 padded with -inf when fewer than
        ``k`` items remain. Users are scored ``chunk_size`` at a time, and fewer when their score
        rows would pass :data:`~recsys_lib.search.topk.SCORE_CHUNK_BYTES`, so memory stays bounded
        whatever the number of users and items."""
        chunk_size = bounded_chunk(chunk_size, self.n_items)
        user_idx = np.asarray(user_idx, dtype=np.int64)
        items = np.empty((len(user_idx), k), dtype=np.int64)
        scores = np.empty((len(user_idx), k), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, len(user_idx), chunk_size):
                chunk = user_idx[start : start + chunk_size]
                s = self.score_users(torch.from_numpy(chunk), history).float()  # (chunk, n_items)
                rows = exclude[chunk] if exclude is not None else None
                top_i, top_s = topk_excluding(s, rows, k)
                items[start : start + len(chunk)] = top_i.cpu().numpy()
                scores[start : start + len(chunk)] = top_s.cpu().numpy()
        return items, scores

    def planned_epochs(self, train: TrainConfig) -> int:
        """How many epochs :meth:`fit` runs at most under ``train`` (what progress counts up to):
        ``train.epochs``, unless the model counts its passes elsewhere."""
        return train.epochs

    def check_fits(self, features: FeatureSet) -> None:
        """Raise ModelError unless ``features`` has this model's users and items."""
        if (features.n_users, features.n_items) != (self.n_users, self.n_items):
            raise ModelError(
                f"model was built for {self.n_users} users x {self.n_items} items, "
                f"features have {features.n_users} x {features.n_items}"
            )

    def describe(self) -> dict[str, Any]:
        """Flat, loggable description: model name, sizes and config."""
        return {"model": self.name, "n_users": self.n_users, "n_items": self.n_items, **self.config.model_dump()}
