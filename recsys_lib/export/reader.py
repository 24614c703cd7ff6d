"""Reading published exports: follow the export set's ``_latest.json`` (or a date) to a table's
manifest, then its files.

Only published partitions are readable: a partition without ``_SUCCESS`` and a manifest does not
exist for readers, and only the files the manifest lists are read, so staged or stale parts are
never seen. Nothing is trusted unchecked: the pointer and the manifest must have the shape the
publisher writes, and every part must have the size and SHA-256 its manifest records before a row
of it is served. "The latest" of every table is the date of the one pointer of the export set
(``user_topk``'s ``_latest.json``, see :mod:`recsys_lib.export.publish`), so the tables a reader
joins always come from the same export.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pandas as pd

from recsys_lib import schema
from recsys_lib.errors import ConfigError, ExportNotFoundError, InvalidObjectError, ObjectNotFoundError, StorageError
from recsys_lib.export.publish import MANIFEST, SUCCESS
from recsys_lib.storage import ObjectStore, layout, parquet_to_frame

_RETRIES = 3
_SHA256 = re.compile(r"[0-9a-f]{64}")


def read_pointer(store: ObjectStore, dataset: str, table: str = schema.ExportTable.USER_TOPK) -> dict[str, Any]:
    """The export set's pointer (``user_topk``'s ``_latest.json``): ``dt``, and ``tables`` (the
    tables of that export, absent in pointers written before it was the set's).

    Raises ExportNotFoundError when nothing was published yet (naming ``table``, the one the caller
    wants), InvalidObjectError (naming the object) when it is not a pointer.
    """
    key = layout.export_set_pointer_key(dataset)
    try:
        pointer = store.get_json(key)
    except ObjectNotFoundError:
        raise ExportNotFoundError(f"no published {table} export for dataset {dataset!r} yet") from None
    if not isinstance(pointer, dict):
        raise InvalidObjectError(f"{store.uri(key)} is not an export pointer: a JSON {type(pointer).__name__}")
    _check_date(store.uri(key), "pointer", pointer.get("dt"))
    tables = pointer.get("tables")
    if tables is not None and not (isinstance(tables, dict) and all(isinstance(t, str) for t in tables)):
        raise InvalidObjectError(f"{store.uri(key)} is not an export pointer: 'tables' is not a mapping of names")
    return pointer


def read_manifest(
    store: ObjectStore, dataset: str, ds: str | None = None, table: str = schema.ExportTable.USER_TOPK
) -> dict[str, Any]:
    """The manifest of ``table``'s published partition ``ds``, or of the latest export set's when
    ``ds`` is None (ExportNotFoundError when that export has no ``table``: a model without item
    vectors writes no embeddings). Raises InvalidObjectError when the manifest is not one."""
    if ds is None:
        pointer = read_pointer(store, dataset, table)
        ds = str(pointer["dt"])
        if pointer.get("tables") is not None and table not in pointer["tables"]:
            raise ExportNotFoundError(f"the latest export of dataset {dataset!r} ({ds}) has no {table} table")
    prefix = layout.export_prefix(table, dataset, ds)
    if not store.exists(prefix + SUCCESS):
        raise ExportNotFoundError(f"{table} for dataset {dataset!r} on {ds} is not published ({store.uri(prefix)})")
    key = prefix + MANIFEST
    return check_manifest(store.uri(key), store.get_json(key), table=table, dataset=dataset, ds=ds)


def check_manifest(uri: str, manifest: Any, *, table: str, dataset: str, ds: str) -> dict[str, Any]:
    """``manifest`` (read from ``uri``) if it is the manifest of ``table``'s partition ``ds`` of
    ``dataset``: a mapping with the date, the row count and each file's name, rows, size and
    SHA-256; else InvalidObjectError naming ``uri`` and what is wrong."""

    def refuse(what: str) -> InvalidObjectError:
        return InvalidObjectError(f"{uri} is not a manifest of {table} on {ds}: {what}")

    if not isinstance(manifest, dict):
        raise refuse(f"a JSON {type(manifest).__name__}, not an object")
    if manifest.get("dt") != ds:
        raise refuse(f"its dt is {manifest.get('dt')!r}")
    for field, expected in (("table", table), ("dataset", dataset)):  # absent in the oldest manifests
        if field in manifest and manifest[field] != expected:
            raise refuse(f"its {field} is {manifest[field]!r}")
    if not _count(manifest.get("rows")):
        raise refuse(f"'rows' is {manifest.get('rows')!r}, not a row count")
    files = manifest.get("files")
    if not isinstance(files, list):
        raise refuse("'files' is not a list")
    for i, part in enumerate(files):
        if not isinstance(part, dict):
            raise refuse(f"files[{i}] is not an object")
        name, sha = part.get("name"), part.get("sha256")
        if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
            raise refuse(f"files[{i}] has no plain file name ({name!r})")
        if not (_count(part.get("size")) and _count(part.get("rows"))):
            raise refuse(f"files[{i}] ({name}) has no byte size or row count")
        if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
            raise refuse(f"files[{i}] ({name}) records no SHA-256 checksum")
    return dict(manifest)


def read_recommendations(
    store: ObjectStore,
    dataset: str,
    ds: str | None = None,
    *,
    table: str = schema.ExportTable.USER_TOPK,
    user_ids: list[str] | None = None,
) -> pd.DataFrame:
    """Rows of a published export (the latest export set's by default), optionally only for ``user_ids``.

    Every file must match the manifest's size and SHA-256 (InvalidObjectError naming the part, so
    a part altered in place is never served), and the row count must add up. A partition
    re-published while being read is retried from the new manifest.
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
    """One listed part, after checking its bytes against the manifest (SHA-256: about 1 GB/s, a
    few per cent of the Parquet decoding it guards)."""
    uri = store.uri(prefix + part["name"])
    data = store.get_bytes(prefix + part["name"])
    if len(data) != part["size"]:
        raise InvalidObjectError(f"{uri} has {len(data)} bytes, its manifest says {part['size']}; not served")
    if hashlib.sha256(data).hexdigest() != part["sha256"]:
        raise InvalidObjectError(
            f"{uri} does not match the SHA-256 its manifest records (altered after publish); not served"
        )
    return parquet_to_frame(data)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_date(uri: str, kind: str, value: Any) -> None:
    if not isinstance(value, str):
        raise InvalidObjectError(f"{uri} is not an export {kind}: its 'dt' is {value!r}, not a date")
    try:
        layout.check_ds(value)
    except ConfigError:
        raise InvalidObjectError(f"{uri} is not an export {kind}: its 'dt' is {value!r}, not YYYY-MM-DD") from None
