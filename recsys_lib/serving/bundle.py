"""A trained model with everything needed to serve it: id encoders, popularity fallback, metadata.

A bundle is what the registry logs and what the export loads. It speaks raw ids: it maps the users
and items of any (newer) FeatureSet into its own index space, scores known users with the model and
serves users it has never seen from its popularity fallback. Saved as a folder of plain files;
loading runs no pickled code (weights are safetensors, ids Parquet, metadata JSON).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from safetensors.torch import load_file, save_file

from recsys_lib import schema
from recsys_lib.config import ModelConfig
from recsys_lib.errors import ModelError
from recsys_lib.features import FeatureSet, UserHistory
from recsys_lib.models import model_class
from recsys_lib.models.base import Recommender
from recsys_lib.serving.rules import ListRules
from recsys_lib.serving.scorer import ALL_SPLITS, BundleScorer, positions

FORMAT_VERSION = 2  # 2: chronological history instead of an unordered seen set; state = net state_dict
_FALLBACK = "__fallback_scores"


@dataclass
class ModelBundle:
    """A fitted model with what serving it by raw id needs: the id encoders, each known user's
    history, the popularity fallback for users it never met, and run metadata; saved as a folder
    of plain files."""

    model: Recommender
    user_ids: np.ndarray
    """(n_users,) raw ids of the users the model knows, in the model's index order."""
    item_ids: np.ndarray
    """(n_items,) raw ids of the items the model scores, in the model's index order."""
    fallback_scores: np.ndarray
    """(n_items,) float32 popularity in training, served to users the model does not know."""
    history: UserHistory
    """What each known user did, in order (all windows): scored from by sequence models, and never
    recommended back to the user."""
    metadata: dict[str, Any] = field(default_factory=dict)
    _own: BundleScorer | None = field(default=None, init=False, repr=False, compare=False)
    """The scorer of :meth:`recommend_ids`, built on first use."""
    _serving: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)
    """One :meth:`recommend_ids` at a time: a model server calls it from several threads, and the
    scorer's index scores into buffers of its own."""

    @classmethod
    def from_training(cls, model: Recommender, features: FeatureSet, **metadata: Any) -> ModelBundle:
        """Bundle a model fitted on ``features``: fallback = train popularity, history = all splits."""
        popularity = np.asarray(features.matrix("train").sum(axis=0)).ravel().astype(np.float32)
        history = features.history(*ALL_SPLITS)
        return cls(model, features.user_ids, features.item_ids, popularity, history, dict(metadata))

    @property
    def seen(self) -> sp.csr_matrix:
        """(n_users, n_items) 1 where a known user met an item."""
        return self.history.matrix()

    # --- persistence ----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the bundle into folder ``path`` (created): bundle.json, weights.safetensors, ids."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.model.state().items()}
        tensors[_FALLBACK] = torch.from_numpy(np.ascontiguousarray(self.fallback_scores, dtype=np.float32))
        save_file(tensors, path / "weights.safetensors")
        pd.DataFrame({schema.USER_ID: self.user_ids.astype(str)}).to_parquet(path / "user_ids.parquet", index=False)
        pd.DataFrame({schema.ITEM_ID: self.item_ids.astype(str)}).to_parquet(path / "item_ids.parquet", index=False)
        users = np.repeat(np.arange(self.history.n_users, dtype=np.int32), self.history.lengths())
        pd.DataFrame({schema.USER_IDX: users, schema.ITEM_IDX: self.history.items.astype(np.int32)}).to_parquet(
            path / "history.parquet", index=False
        )  # row order is each user's chronological order
        meta = {
            "format_version": FORMAT_VERSION,
            "model": self.model.name,
            "model_config": self.model.config.model_dump(),
            "n_users": self.model.n_users,
            "n_items": self.model.n_items,
            "metadata": self.metadata,
        }
        (path / "bundle.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
        return path

    @classmethod
    def load(cls, path: str | Path) -> ModelBundle:
        """The bundle :meth:`save` wrote in folder ``path``; ModelError naming the folder when a
        file is missing or unreadable, the format version is not this code's, or the weights do
        not fit the model."""
        path = Path(path)
        try:
            meta = json.loads((path / "bundle.json").read_text())
            tensors = load_file(path / "weights.safetensors")
            user_ids = pd.read_parquet(path / "user_ids.parquet")[schema.USER_ID].to_numpy(dtype=object)
            item_ids = pd.read_parquet(path / "item_ids.parquet")[schema.ITEM_ID].to_numpy(dtype=object)
            history_df = pd.read_parquet(path / "history.parquet")
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"cannot load model bundle from {path}: {exc}") from exc
        if meta.get("format_version") != FORMAT_VERSION:
            raise ModelError(f"model bundle {path} has format {meta.get('format_version')}, expected {FORMAT_VERSION}")
        fallback = tensors.pop(_FALLBACK).numpy()
        config = ModelConfig.model_validate(meta["model_config"])
        model = model_class(meta["model"]).from_state(meta["n_users"], meta["n_items"], config, tensors)
        history_df[schema.TIMESTAMP] = pd.to_datetime(np.arange(len(history_df)), unit="us", utc=True)
        history = UserHistory.from_pairs(history_df, meta["n_users"], meta["n_items"])
        return cls(model, user_ids, item_ids, fallback, history, meta.get("metadata", {}))

    # --- serving ----------------------------------------------------------------------------------
    def recommend_ids(self, user_ids: np.ndarray, k: int, chunk_size: int = 4096) -> pd.DataFrame:
        """Top-``k`` by raw user id, seen items excluded, unknown users served the fallback.

        Returns a long frame: user_id, rank (1-based), item_id, score; padding rows are dropped.
        """
        user_ids = np.asarray(user_ids).astype(str)
        rows = positions(self.user_ids, user_ids)
        rows[rows < 0] = self.model.n_users  # the scorer's row for a user never met
        with self._serving:
            if self._own is None:
                self._own = BundleScorer.own_users(self)
            try:
                items, scores = self._own.topk_in_chunks(rows, k, chunk_size)
            finally:
                self._own.release()  # a long-lived server does not keep a chunk's score buffers
        return long_format(user_ids, items, scores, self.item_ids)

    def rerank(self, user_id: str, candidate_item_ids: list[str]) -> list[str]:
        """A search engine's result list for ``user_id`` ordered by the model's scores for that user.

        Items the model knows move, best first, into the slots that known items held; items it does
        not know keep their slots, so new products stay where search put them. Ties keep the
        incoming order. An unknown user gets the list back unchanged. Nothing is filtered out.

        This is the bundle-only call (a notebook, the pyfunc): it knows no catalogue and no session.
        The live service's ``/rerank`` (:meth:`~recsys_lib.serving.live.LiveScorer.rerank`) orders
        differently on purpose: the known, available candidates by score, then every other one in
        its incoming order, and it reads the shopper's session.
        """
        candidates = [str(i) for i in candidate_item_ids]
        user = positions(self.user_ids, np.array([str(user_id)]))[0]
        items = positions(self.item_ids, np.array(candidates, dtype=object))  # (n,) model item idx or -1
        slots = np.flatnonzero(items >= 0)
        if user < 0 or len(slots) < 2:
            return candidates
        with torch.no_grad():
            scores = self.model.score_users(torch.tensor([user]), self.history)[0].numpy()  # (n_items,)
        order = slots[np.argsort(-scores[items[slots]], kind="stable")]
        out = list(candidates)
        for slot, source in zip(slots, order, strict=True):
            out[slot] = candidates[source]
        return out

    def scorer(
        self,
        features: FeatureSet,
        *,
        history_splits: tuple[str, ...] = ALL_SPLITS,
        exclude_unavailable: bool = True,
        rules: ListRules | None = None,
        device: torch.device | str | None = None,
    ) -> BundleScorer:
        """This bundle bound to ``features``, to serve its users chunk by chunk (see BundleScorer)."""
        return BundleScorer(
            self,
            features,
            history_splits=history_splits,
            exclude_unavailable=exclude_unavailable,
            rules=rules,
            device=device,
        )

    def recommend_for(
        self,
        features: FeatureSet,
        users: np.ndarray,
        k: int,
        *,
        history_splits: tuple[str, ...] = ALL_SPLITS,
        exclude_unavailable: bool = True,
        chunk_size: int = 4096,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` for ``features``' users ``users`` (their user_idx), in ``features``' item index space.

        See :class:`~recsys_lib.serving.scorer.BundleScorer` for what is read and excluded. Users are
        scored ``chunk_size`` at a time. Returns ``(items, scores)`` of shape (n, k): item_idx of
        ``features`` (-1 padding) and float32 scores (-inf padding).
        """
        scorer = self.scorer(features, history_splits=history_splits, exclude_unavailable=exclude_unavailable)
        return scorer.topk_in_chunks(users, k, chunk_size)


def long_format(user_ids: np.ndarray, items: np.ndarray, scores: np.ndarray, item_ids: np.ndarray) -> pd.DataFrame:
    """(n, k) index/score blocks to rows of user_id, rank, item_id, score (padding dropped)."""
    n, k = items.shape
    valid = items.ravel() >= 0
    return pd.DataFrame(
        {
            schema.USER_ID: np.repeat(np.asarray(user_ids).astype(str), k)[valid],
            schema.RANK: np.tile(np.arange(1, k + 1, dtype=np.int32), n)[valid],
            schema.ITEM_ID: np.asarray(item_ids).astype(str)[items.ravel()[valid]],
            schema.SCORE: scores.ravel()[valid].astype(np.float32),
        }
    )
