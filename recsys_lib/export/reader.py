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
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recsys_lib import schema
from recsys_lib.errors import ConfigError, ExportNotFoundError, InvalidObjectError, ObjectNotFoundError, StorageError
from recsys_lib.export.publish import MANIFEST, SUCCESS
from recsys_lib.storage import ObjectStore, layout, parquet_to_frame

_RETRIES = 3
T = TypeVar("T", pd.DataFrame, pa.Table)
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
    _, parts = _read_published(store, dataset, ds, table, parquet_to_frame)
    columns = schema.export_columns(table)
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(columns))
    if user_ids is not None:
        df = df[df[schema.USER_ID].isin([str(u) for u in user_ids])].reset_index(drop=True)
    if table in schema.EMBEDDING_TABLES:
        return df
    return df.astype({c: t for c, t in columns.items() if c in df.columns and not t.startswith("list<")})


@dataclass(frozen=True)
class Embeddings:
    """A published embedding table as arrays: ``ids`` (n,) str and their ``vectors`` (n, d) float32,
    with the partition's ``manifest`` (the model name and version they come from)."""

    ids: np.ndarray
    vectors: np.ndarray
    manifest: dict[str, Any]


def read_embeddings(
    store: ObjectStore, dataset: str, ds: str | None = None, table: str = schema.ExportTable.USER_EMBEDDINGS
) -> Embeddings:
    """An embedding table (``user_embeddings`` or ``item_embeddings``) of a published export, checked
    like :func:`read_recommendations` but decoded straight from Arrow into one float32 matrix (no
    Python object per row: two million users' vectors are one array). InvalidObjectError when the
    vectors do not all have the same length."""
    if table not in schema.EMBEDDING_TABLES:
        raise ConfigError(f"{table!r} is not an embedding table: one of {sorted(schema.EMBEDDING_TABLES)}")
    manifest, parts = _read_published(store, dataset, ds, table, _parquet_to_arrow)
    id_column = schema.EMBEDDING_TABLES[table]
    joined = pa.concat_tables(parts) if parts else None
    if joined is None or joined.num_rows == 0:
        return Embeddings(np.empty(0, dtype=object), np.empty((0, 0), np.float32), manifest)
    lists = joined.column(schema.EMBEDDING)  # chunked: one list array's int32 offsets end at 2**31 values
    where = store.uri(layout.export_prefix(table, dataset, manifest["dt"]))
    if lists.null_count:
        raise InvalidObjectError(f"{where} holds {lists.null_count} rows without a vector")
    lengths = pc.list_value_length(lists)
    dim, longest = pc.min(lengths).as_py(), pc.max(lengths).as_py()
    if dim != longest or dim is None or dim < 1:
        raise InvalidObjectError(f"{where} holds vectors of {dim} to {longest} values; not one embedding size")
    pieces = [pc.list_flatten(chunk).to_numpy(zero_copy_only=False) for chunk in lists.chunks]
    values = np.concatenate(pieces).astype(np.float32, copy=False)  # a copy of its own, writable
    ids = joined.column(id_column).to_numpy(zero_copy_only=False).astype(str)
    return Embeddings(ids, values.reshape(joined.num_rows, dim), manifest)


def _read_published(
    store: ObjectStore, dataset: str, ds: str | None, table: str, decode: Callable[[bytes], T]
) -> tuple[dict[str, Any], list[T]]:
    """The manifest of ``table``'s partition ``ds`` (the latest export set's when None) and each
    part it lists, checked against it and decoded by ``decode``; retried from the new manifest when
    the partition is re-published while being read. StorageError when the rows do not add up."""
    for attempt in range(_RETRIES):
        manifest = read_manifest(store, dataset, ds, table)
        prefix = layout.export_prefix(table, dataset, manifest["dt"])
        try:
            parts = [decode(_verified(store, prefix, part)) for part in manifest["files"]]
        except ObjectNotFoundError:
            if attempt == _RETRIES - 1:
                raise
            continue  # replaced by a newer publish while reading: follow the new manifest
        rows = sum(len(p) for p in parts)
        if rows != manifest["rows"]:
            raise StorageError(f"{store.uri(prefix)} has {rows} rows but its manifest says {manifest['rows']}")
        return manifest, parts
    raise AssertionError("unreachable")


def _parquet_to_arrow(data: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(data))


def _verified(store: ObjectStore, prefix: str, part: dict[str, Any]) -> bytes:
    """One listed part's bytes, after checking them against the manifest (SHA-256: about 1 GB/s, a
    few per cent of the Parquet decoding it guards)."""
    uri = store.uri(prefix + part["name"])
    data = store.get_bytes(prefix + part["name"])
    if len(data) != part["size"]:
        raise InvalidObjectError(f"{uri} has {len(data)} bytes, its manifest says {part['size']}; not served")
    if hashlib.sha256(data).hexdigest() != part["sha256"]:
        raise InvalidObjectError(
            f"{uri} does not match the SHA-256 its manifest records (altered after publish); not served"
        )
    return data


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_date(uri: str, kind: str, value: Any) -> None:
    if not isinstance(value, str):
        raise InvalidObjectError(f"{uri} is not an export {kind}: its 'dt' is {value!r}, not a date")
    try:
        layout.check_ds(value)
    except ConfigError:
        raise InvalidObjectError(f"{uri} is not an export {kind}: its 'dt' is {value!r}, not YYYY-MM-DD") from None
