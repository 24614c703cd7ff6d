"""User and item vectors of a served model, as export rows for an online re-ranker.

A re-ranker scores ``user_vector . item_vector`` for the candidates it is given; for the models
that have vectors this ranks like the batch export (MF-BPR adds a per-item bias that is not in the
vectors). User vectors come from the history the bundle holds, so they describe each known user as
of the model's training data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd

from recsys_lib import schema
from recsys_lib.models.bundle import ModelBundle


def _rows(id_column: str, ids: np.ndarray, vectors: np.ndarray, model_name: str, model_version: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            id_column: pd.Series(np.asarray(ids).astype(str), dtype="str"),
            schema.EMBEDDING: list(np.asarray(vectors, dtype=np.float32)),
            schema.MODEL_NAME: model_name,
            schema.MODEL_VERSION: str(model_version),
        }
    )


def embedding_frames(
    bundle: ModelBundle,
    *,
    model_name: str,
    model_version: str,
    users: np.ndarray | None = None,
    user_id_map: Callable[[np.ndarray], np.ndarray] | None = None,
    chunk_size: int = 4096,
) -> dict[str, Iterator[pd.DataFrame]]:
    """``{"item_embeddings": frames, "user_embeddings": frames}`` for a model with vectors, ``{}``
    for one without (popularity, item-kNN). ``users`` (model user_idx, default all) are computed
    ``chunk_size`` at a time; ``user_id_map`` rewrites their exported ids (pseudonymisation)."""
    model = bundle.model
    items = model.item_vectors()  # (n_items, dim) or None
    if items is None:
        return {}

    def item_frames() -> Iterator[pd.DataFrame]:
        yield _rows(schema.ITEM_ID, bundle.item_ids, items, model_name, model_version)

    def user_frames() -> Iterator[pd.DataFrame]:
        wanted = np.arange(model.n_users) if users is None else np.asarray(users, dtype=np.int64)
        for start in range(0, len(wanted), chunk_size):
            chunk = wanted[start : start + chunk_size]
            vectors = model.user_vectors(chunk, bundle.history)  # (n, dim)
            if vectors is not None:
                ids = bundle.user_ids[chunk].astype(str)
                ids = user_id_map(ids) if user_id_map is not None else ids
                yield _rows(schema.USER_ID, ids, vectors, model_name, model_version)

    return {"item_embeddings": item_frames(), "user_embeddings": user_frames()}
