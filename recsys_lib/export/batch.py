"""Batch top-k for every user of a snapshot, as export rows, one chunk of users at a time."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from recsys_lib import schema
from recsys_lib.features import FeatureSet
from recsys_lib.models.bundle import ModelBundle, long_format


def topk_frames(
    bundle: ModelBundle,
    features: FeatureSet,
    k: int,
    *,
    model_name: str,
    model_version: str,
    chunk_size: int = 4096,
) -> Iterator[pd.DataFrame]:
    """Yield export rows (user_id, rank, item_id, score, model_name, model_version) per user chunk.

    Every user of ``features`` is served: known users by the model, new users by its popularity
    fallback. Each user's history (all splits) and unavailable items are never recommended.
    Memory is bounded by ``chunk_size`` users at a time.
    """
    users = np.arange(features.n_users, dtype=np.int64)
    for start in range(0, len(users), chunk_size):
        chunk = users[start : start + chunk_size]
        items, scores = bundle.recommend_for(features, chunk, k, chunk_size=chunk_size)
        frame = long_format(features.user_ids[chunk], items, scores, features.item_ids)
        frame[schema.MODEL_NAME] = model_name
        frame[schema.MODEL_VERSION] = str(model_version)
        yield frame.astype(schema.EXPORT_DTYPES)
