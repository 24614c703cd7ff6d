"""Staging and atomic publishing of an export table partition (DESIGN.md sections 2 and 4).

Protocol: parts are written under ``_staging/`` (invisible to readers); publish checks every staged
part, copies them into ``dt=<ds>/`` under names unique to the attempt, writes ``_manifest.json``,
then ``_SUCCESS``, then swaps ``_latest.json`` with a conditional write, and only then deletes
parts of earlier attempts. Data files are never overwritten in place, so a reader that follows a
pointer and a manifest sees one complete export; a re-run for the same date replaces, never adds.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from recsys_lib import schema
from recsys_lib.errors import PreconditionFailedError, StorageError
from recsys_lib.storage import ObjectStore, frame_to_parquet, layout

MANIFEST = "_manifest.json"
SUCCESS = "_SUCCESS"
_POINTER_RETRIES = 10


@dataclass(frozen=True)
class PartFile:
    name: str
    rows: int
    size: int
    sha256: str


def stage_parts(
    store: ObjectStore,
    table: str,
    dataset: str,
    ds: str,
    attempt: str,
    frames: Iterable[pd.DataFrame],
    rows_per_file: int,
) -> list[PartFile]:
    """Write ``frames`` as Parquet parts of at most ``rows_per_file`` rows into the staging area."""
    prefix = layout.export_staging_prefix(table, dataset, ds, attempt)
    store.delete([o.key for o in store.list_objects(prefix)])  # a retried attempt starts clean
    parts: list[PartFile] = []
    pending: list[pd.DataFrame] = []
    pending_rows = 0

    def flush() -> None:
        nonlocal pending, pending_rows
        if not pending:
            return
        data = frame_to_parquet(pd.concat(pending, ignore_index=True))
        name = f"part-{len(parts):05d}-{attempt}.parquet"
        store.put_bytes(prefix + name, data, content_type="application/vnd.apache.parquet")
        parts.append(PartFile(name, pending_rows, len(data), hashlib.sha256(data).hexdigest()))
        pending, pending_rows = [], 0

    for frame in frames:
        for start in range(0, len(frame), rows_per_file):
            piece = frame.iloc[start : start + rows_per_file]
            if pending_rows + len(piece) > rows_per_file:
                flush()
            pending.append(piece)
            pending_rows += len(piece)
    flush()
    return parts


def publish(
    store: ObjectStore,
    table: str,
    dataset: str,
    ds: str,
    attempt: str,
    parts: list[PartFile],
    *,
    model: dict[str, Any],
    snapshot_uri: str,
) -> dict[str, Any]:
    """Make staged ``parts`` the published partition for ``ds`` and move the latest pointer.

    Raises StorageError (and publishes nothing) if a staged part is missing or differs from what
    was staged. Returns the manifest.
    """
    staging = layout.export_staging_prefix(table, dataset, ds, attempt)
    target = layout.export_prefix(table, dataset, ds)
    for part in parts:
        info = store.head(staging + part.name)
        if info is None or info.size != part.size:
            raise StorageError(
                f"staged part {store.uri(staging + part.name)} is missing or incomplete; nothing published"
            )
    for part in parts:
        store.copy(staging + part.name, target + part.name)
    manifest = {
        "schema_version": schema.EXPORT_SCHEMA_VERSION,
        "table": table,
        "dataset": dataset,
        "dt": ds,
        "attempt": attempt,
        "rows": sum(p.rows for p in parts),
        "files": [asdict(p) for p in parts],
        "columns": schema.export_columns(table),
        "model": model,
        "snapshot_uri": snapshot_uri,
        "created_at": datetime.now(UTC).isoformat(),
    }
    store.put_json(target + MANIFEST, manifest)
    store.put_bytes(target + SUCCESS, b"")
    move_latest_pointer(store, table, dataset, ds, manifest)
    keep = {target + p.name for p in parts} | {target + MANIFEST, target + SUCCESS}
    store.delete([o.key for o in store.list_objects(target) if o.key not in keep])
    store.delete([o.key for o in store.list_objects(staging)])
    return manifest


def move_latest_pointer(store: ObjectStore, table: str, dataset: str, ds: str, manifest: dict[str, Any]) -> bool:
    """Point ``_latest.json`` at ``ds`` unless it already points at a newer date.

    Uses conditional writes (If-Match / If-None-Match), retried on a lost race, so concurrent
    publishers leave exactly one consistent pointer. Returns True if the pointer now names ``ds``.
    """
    key = layout.latest_pointer_key(table, dataset)
    pointer = {
        "dt": ds,
        "manifest": layout.export_prefix(table, dataset, ds) + MANIFEST,
        "attempt": manifest["attempt"],
        "rows": manifest["rows"],
        "model": manifest["model"],
        "published_at": manifest["created_at"],
    }
    for attempt in range(_POINTER_RETRIES):
        if attempt:
            time.sleep(random.uniform(0, 0.05 * attempt))  # jittered backoff after a lost race
        current = store.head(key)
        if current is not None and store.get_json(key).get("dt", "") > ds:
            return False  # a backfill never moves the pointer back in time
        try:
            if current is None:
                store.put_json(key, pointer, if_none_match=True)
            else:
                store.put_json(key, pointer, if_match=current.etag)
            return True
        except PreconditionFailedError:
            continue
    raise StorageError(f"could not move {store.uri(key)} after {_POINTER_RETRIES} conflicting writes")
