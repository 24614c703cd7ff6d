"""Task ``export``: top-k for every user from the champion model, and its user and item vectors
(``export.embeddings``), staged (not yet visible)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from recsys_lib.errors import ModelError
from recsys_lib.export.batch import topk_frames
from recsys_lib.export.embeddings import embedding_frames
from recsys_lib.export.publish import stage_parts
from recsys_lib.features import FeatureSet
from recsys_lib.pipelines.context import RunContext
from recsys_lib.registry import mlflow_registry as registry
from recsys_lib.registry.promotion import CHAMPION
from recsys_lib.storage import layout

log = logging.getLogger(__name__)
TABLE = "user_topk"
STAGED_LIST = "_staged.json"


def run(params: Mapping[str, Any] | None, ds: str, *, features_uri: str, snapshot_uri: str) -> dict[str, Any]:
    ctx = RunContext.create(params, ds)
    cfg = ctx.config
    champion = registry.version_by_alias(cfg.registered_model_name, CHAMPION)
    if champion is None:
        raise ModelError(f"registered model {cfg.registered_model_name!r} has no '{CHAMPION}' alias; nothing to export")
    bundle = registry.load_bundle(champion.model_uri)
    features = FeatureSet.load(ctx.store, ctx.store.key_from_uri(features_uri))
    attempt = f"v{champion.version}-{uuid.uuid4().hex[:12]}"
    frames = topk_frames(
        bundle,
        features,
        cfg.export.k,
        model_name=champion.name,
        model_version=champion.version,
        chunk_size=cfg.export.chunk_size,
    )
    parts = stage_parts(ctx.store, TABLE, ctx.dataset, ds, attempt, frames, cfg.export.rows_per_file)
    embeddings = {}
    if cfg.export.embeddings:
        tables = embedding_frames(
            bundle, model_name=champion.name, model_version=champion.version, chunk_size=cfg.export.chunk_size
        )
        for table, table_frames in tables.items():
            staged = stage_parts(ctx.store, table, ctx.dataset, ds, attempt, table_frames, cfg.export.rows_per_file)
            embeddings[table] = [asdict(p) for p in staged]
    staging = layout.export_staging_prefix(TABLE, ctx.dataset, ds, attempt)
    rows = sum(p.rows for p in parts)
    ctx.store.put_json(
        staging + STAGED_LIST,
        {
            "attempt": attempt,
            "parts": [asdict(p) for p in parts],
            "embeddings": embeddings,
            "snapshot_uri": snapshot_uri,
            "model": {"name": champion.name, "version": champion.version, "run_id": champion.run_id},
        },
    )
    log.info(
        "staged %d rows in %d parts for %d users from %s v%s",
        rows,
        len(parts),
        features.n_users,
        champion.name,
        champion.version,
    )
    return {
        "staged_uri": ctx.store.uri(staging + STAGED_LIST),
        "rows": rows,
        "parts": len(parts),
        "model_version": champion.version,
        "embedding_tables": sorted(embeddings),
    }
