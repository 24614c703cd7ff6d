"""Task ``publish``: every staged table of an export attempt -> published partition, manifest,
``_SUCCESS``; then the export set's one pointer.

The plan says how many shards there are; the shards' own ``_parts.json`` (not what XCom says)
say what they wrote. A shard that never finished, or a part that is missing or differs from what
its shard recorded, fails the task before anything is published, so ``_latest.json`` stays where
it was. Every table's partition is published first (``user_topk`` last), then ``user_topk``'s
``_latest.json``, the pointer of the whole set, moves once, naming every table: a publish that
stops between two tables leaves every table's "latest" on the previous export, and its retry
takes the tables it already published as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from recsys_lib.export.plan import read_plan
from recsys_lib.export.publish import (
    MANIFEST,
    PartFile,
    drop_table_pointers,
    move_latest_pointer,
    publish_partition,
    published_manifest,
    staged_parts,
)
from recsys_lib.pipelines.context import RunContext
from recsys_lib.pipelines.export import BUY_AGAIN, PROFILES, TABLE, USER_TABLES
from recsys_lib.schema import ExportTable
from recsys_lib.storage import layout
from recsys_lib.storage.retention import clear_staging, prune

log = logging.getLogger(__name__)
_ORDER: tuple[str, ...] = (
    ExportTable.ITEM_EMBEDDINGS,
    ExportTable.SIMILAR_ITEMS,
    ExportTable.USER_EMBEDDINGS,
    PROFILES,
    BUY_AGAIN,
    TABLE,
)


def run(params: Mapping[str, Any] | None, ds: str, *, plan_uri: str) -> dict[str, Any]:
    """Publish every table the export plan at ``plan_uri`` staged, ``user_topk`` last, then move the
    export set's ``_latest.json`` once, clear staging and (when set) prune past
    ``storage.retention_days``.

    Nothing is published unless every shard finished and matches its ``_parts.json``; a plan of
    another dataset or date, or not a plan, raises. A retry keeps the tables already published.
    Returns the manifest URI, row counts, the model version and the Asset event's ``extra``."""
    ctx = RunContext.create(params, ds)
    store = ctx.store
    plan = read_plan(store, plan_uri, ctx.dataset, ds)
    attempt = plan["attempt"]
    staged: dict[str, list[PartFile]] = {}
    manifests: dict[str, dict[str, Any]] = {}
    for table in _ORDER:
        shards = plan["shards"] if table in USER_TABLES else 1
        done = published_manifest(store, table, ctx.dataset, ds, attempt)
        if done is not None:
            manifests[table] = done  # an earlier try of this publish stopped after this table
        elif table == TABLE or store.list_objects(layout.export_staging_prefix(table, ctx.dataset, ds, attempt)):
            staged[table] = staged_parts(store, table, ctx.dataset, ds, attempt, shards)  # raises if incomplete
        # else: an optional table this model does not have
    for table, parts in staged.items():
        manifests[table] = publish_partition(
            store,
            table,
            ctx.dataset,
            ds,
            attempt,
            parts,
            model=plan["model"],
            snapshot_uri=plan["snapshot_uri"],
            features_uri=plan["features_uri"],
            experiment=plan.get("experiment") if table == TABLE else None,  # the item tables are the champion's
            pseudonymized=bool(plan.get("pseudonymized")) and table in (*USER_TABLES, PROFILES, BUY_AGAIN),
        )
    tables = {t: manifests[t] for t in _ORDER if t in manifests}
    latest = move_latest_pointer(store, TABLE, ctx.dataset, ds, manifests[TABLE], tables=tables)
    drop_table_pointers(store, ctx.dataset)  # earlier versions' per-table pointers could name other dates
    rows = {t: m["rows"] for t, m in tables.items()}
    cleared = clear_staging(store, ctx.dataset, ds)  # this attempt's and any interrupted one's
    pruned = {}
    if ctx.config.storage.retention_days is not None:
        pruned = prune(store, ctx.dataset, ds, ctx.config.storage.retention_days)
    manifest_uri = store.uri(layout.export_prefix(TABLE, ctx.dataset, ds) + MANIFEST)
    log.info("published %s to %s; the latest pointer names %s", rows, manifest_uri, latest)
    log.info("removed %d staged objects of %s; pruned partitions older than the retention: %s", cleared, ds, pruned)
    return {
        "manifest_uri": manifest_uri,
        "latest_dt": latest,
        "rows": rows[TABLE],
        "tables": rows,
        "model_version": plan["model"]["version"],
        "pruned": pruned,
        # the extra of the Asset event (what a downstream DAG needs to read this export)
        "event": {
            "dataset": ctx.dataset,
            "logical_date": ds,
            "model_name": plan["model"]["name"],
            "model_version": plan["model"]["version"],
            "rows": rows[TABLE],
            "manifest_uri": manifest_uri,
        },
    }
