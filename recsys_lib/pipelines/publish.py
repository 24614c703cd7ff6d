"""Task ``publish``: staged export -> published partition, manifest, ``_SUCCESS``, latest pointer.

Embedding tables (if staged) are published first, the user top-k table last, so that when the
top-k pointer moves everything of the run is readable."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from recsys_lib.export.publish import MANIFEST, PartFile, publish
from recsys_lib.pipelines.context import RunContext
from recsys_lib.pipelines.export import TABLE
from recsys_lib.storage import layout

log = logging.getLogger(__name__)


def run(params: Mapping[str, Any] | None, ds: str, *, staged_uri: str) -> dict[str, Any]:
    ctx = RunContext.create(params, ds)
    staged = ctx.store.get_json(ctx.store.key_from_uri(staged_uri))
    for table, table_parts in staged.get("embeddings", {}).items():
        publish(
            ctx.store,
            table,
            ctx.dataset,
            ds,
            staged["attempt"],
            [PartFile(**p) for p in table_parts],
            model=staged["model"],
            snapshot_uri=staged["snapshot_uri"],
        )
    parts = [PartFile(**p) for p in staged["parts"]]
    manifest = publish(
        ctx.store,
        TABLE,
        ctx.dataset,
        ds,
        staged["attempt"],
        parts,
        model=staged["model"],
        snapshot_uri=staged["snapshot_uri"],
    )
    manifest_uri = ctx.store.uri(layout.export_prefix(TABLE, ctx.dataset, ds) + MANIFEST)
    log.info("published %d rows to %s", manifest["rows"], manifest_uri)
    return {"manifest_uri": manifest_uri, "rows": manifest["rows"], "model_version": staged["model"]["version"]}
