"""A small export set staged as the export tasks stage one (``user_topk``, ``item_embeddings``,
``similar_items``, each model version's rows marked by ``model_version``) with its plan, without
training a model: what the publish tests need to publish and interrupt."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys_lib import schema
from recsys_lib.export.plan import plan_key
from recsys_lib.export.publish import stage_parts
from recsys_lib.storage import ObjectStore

TABLES = ("item_embeddings", "similar_items", "user_topk")  # the order publish takes them in
ITEMS = ["item-a", "item-b", "item-c"]


def stage_export(store: ObjectStore, dataset: str, ds: str, version: str, users: list[str]) -> str:
    """Stage an export of model ``version`` for ``users`` on ``ds`` (one shard per table) and
    write its plan; returns the plan's URI (what ``recsys export`` prints)."""
    attempt = f"v{version}-{ds}"
    model = {"name": f"recsys-{dataset}", "version": version, "run_id": f"run-{version}"}
    marks = {schema.MODEL_NAME: model["name"], schema.MODEL_VERSION: version}
    topk = pd.DataFrame(
        {
            schema.USER_ID: [u for u in users for _ in ITEMS],
            schema.RANK: list(range(1, len(ITEMS) + 1)) * len(users),
            schema.ITEM_ID: ITEMS * len(users),
            schema.SCORE: [1.0, 0.5, 0.25] * len(users),
            **marks,
            schema.REASON_ITEM_ID: None,
            schema.REASON_KIND: None,
            schema.ARM: "champion",
        }
    ).astype(schema.EXPORT_DTYPES)
    similar = pd.DataFrame(
        {
            schema.ITEM_ID: ITEMS,
            schema.RANK: 1,
            schema.SIMILAR_ITEM_ID: ITEMS[1:] + ITEMS[:1],
            schema.SCORE: 0.9,
            **marks,
        }
    ).astype(schema.SIMILAR_ITEMS_DTYPES)
    vectors = pd.DataFrame(
        {
            schema.ITEM_ID: ITEMS,
            schema.EMBEDDING: [np.full(4, float(version), np.float32) for _ in ITEMS],
            **marks,
        }
    )
    for table, frame in (("user_topk", topk), ("similar_items", similar), ("item_embeddings", vectors)):
        stage_parts(store, table, dataset, ds, attempt, [frame], 100)
    plan = {
        "dataset": dataset,
        "dt": ds,
        "attempt": attempt,
        "shards": 1,
        "features_uri": store.uri(f"features/dataset={dataset}/dt={ds}/"),
        "snapshot_uri": store.uri(f"snapshots/dataset={dataset}/dt={ds}/"),
        "model": model,
        "model_uri": f"models:/{model['name']}/{version}",
        "k": len(ITEMS),
        "pseudonymized": False,
        "experiment": None,
    }
    key = plan_key(dataset, ds, attempt)
    store.put_json(key, plan)
    return store.uri(key)


def latest_versions(store: ObjectStore, dataset: str) -> dict[str, set[str]]:
    """The model versions each table's latest rows come from, as a reader sees them."""
    from recsys_lib.export import read_recommendations

    return {table: set(read_recommendations(store, dataset, table=table)[schema.MODEL_VERSION]) for table in TABLES}
