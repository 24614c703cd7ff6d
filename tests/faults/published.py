"""What the fault tests compare with a clean run: the published top-k, in a stable order."""

from __future__ import annotations

import pandas as pd

from recsys_lib import schema
from recsys_lib.storage import ObjectStore

KEY = [schema.USER_ID, schema.RANK]


def published_topk(store: ObjectStore, dataset: str) -> pd.DataFrame:
    """user_id, rank, item_id, score of the latest published user_topk, sorted by user and rank."""
    from recsys_lib.export import read_recommendations

    rows = read_recommendations(store, dataset)[[schema.USER_ID, schema.RANK, schema.ITEM_ID, schema.SCORE]]
    return rows.sort_values(KEY).reset_index(drop=True)
