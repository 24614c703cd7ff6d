"""Reading published exports: follow ``_latest.json`` (or a date) to the manifest, then its files.

Only published partitions are readable: a partition without ``_SUCCESS`` and a manifest does not
exist for readers, and only the files the manifest lists are read, so staged or stale parts are
never seen.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from recsys_lib import schema
from recsys_lib.errors import ExportNotFoundError, ObjectNotFoundError, StorageError
from recsys_lib.export.publish import MANIFEST, SUCCESS
from recsys_lib.storage import ObjectStore, layout, parquet_to_frame

_RETRIES = 3


def read_manifest(store: ObjectStore, dataset: str, ds: str | None = None, table: str = "user_topk") -> dict[str, Any]:
    """The manifest of the published partition ``ds``, or of the latest one when ``ds`` is None."""
    if ds is None:
        try:
            pointer = store.get_json(layout.latest_pointer_key(table, dataset))
        except ObjectNotFoundError:
            raise ExportNotFoundError(f"no published {table} export for dataset {dataset!r} yet") from None
        ds = str(pointer["dt"])
    prefix = layout.export_prefix(table, dataset, ds)
    if not store.exists(prefix + SUCCESS):
        raise ExportNotFoundError(f"{table} for dataset {dataset!r} on {ds} is not published ({store.uri(prefix)})")
    return dict(store.get_json(prefix + MANIFEST))


def read_recommendations(
    store: ObjectStore,
    dataset: str,
    ds: str | None = None,
    *,
    table: str = "user_topk",
    user_ids: list[str] | None = None,
) -> pd.DataFrame:
    """Rows of a published export (latest by default), optionally only for ``user_ids``.

    Checks that every file matches the manifest's size and that the row count adds up. A
    partition re-published while being read is retried from the manifest.
    """
    for attempt in range(_RETRIES):
        manifest = read_manifest(store, dataset, ds, table)
        prefix = layout.export_prefix(table, dataset, manifest["dt"])
        try:
            frames = [_read_part(store, prefix, part) for part in manifest["files"]]
        except ObjectNotFoundError:
            if attempt == _RETRIES - 1:
                raise
            continue  # replaced by a newer publish while reading: follow the new manifest
        columns = schema.export_columns(table)
        df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(columns))
        if len(df) != manifest["rows"]:
            raise StorageError(f"{store.uri(prefix)} has {len(df)} rows but its manifest says {manifest['rows']}")
        if user_ids is not None:
            df = df[df[schema.USER_ID].isin([str(u) for u in user_ids])].reset_index(drop=True)
        if table in schema.EMBEDDING_TABLES:
            return df
        return df.astype({c: t for c, t in columns.items() if c in df.columns and not t.startswith("list<")})
    raise AssertionError("unreachable")


def _read_part(store: ObjectStore, prefix: str, part: dict[str, Any]) -> pd.DataFrame:
    data = store.get_bytes(prefix + part["name"])
    if len(data) != part["size"]:
        raise StorageError(f"{store.uri(prefix + part['name'])} has {len(data)} bytes, manifest says {part['size']}")
    return parquet_to_frame(data)
