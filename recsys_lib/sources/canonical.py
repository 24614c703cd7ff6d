"""The canonical source: events and items files already in the schema of DESIGN.md section 3.

Files sit directly under the raw prefix: ``events.parquet`` / ``events.csv`` / ``events.csv.gz``
(or several ``events-<part>.<ext>``, concatenated in key order) and the same for ``items``. The
items files are optional; without them the catalogue is the event item ids with every other
attribute null and ``available`` true. Timestamps in CSV are ISO 8601; a naive timestamp is read
as UTC and one with an offset is converted to UTC. No rows are dropped (``dropped`` is empty).
"""

from __future__ import annotations

import re

import pandas as pd

from recsys_lib import schema
from recsys_lib.errors import SourceError
from recsys_lib.sources.base import RawTables, conform_events, conform_items
from recsys_lib.sources.files import TABLE_SUFFIXES, base_name, read_frames
from recsys_lib.storage.objectstore import ObjectStore

EVENTS_FILE_RE = re.compile(r"events(-[^/]+)?\.(parquet|csv|csv\.gz)", re.IGNORECASE)
ITEMS_FILE_RE = re.compile(r"items(-[^/]+)?\.(parquet|csv|csv\.gz)", re.IGNORECASE)

_EVENT_STR_COLUMNS = (schema.USER_ID, schema.ITEM_ID, schema.EVENT_TYPE, schema.SESSION_ID, schema.TIMESTAMP)
_ITEM_STR_COLUMNS = (schema.ITEM_ID, schema.TITLE, schema.CATEGORY, schema.BRAND)


def select_files(keys: list[str]) -> tuple[list[str], list[str]]:
    """Split raw keys into (events keys, items keys) by file name; other files are ignored."""
    events = [k for k in keys if EVENTS_FILE_RE.fullmatch(base_name(k))]
    items = [k for k in keys if ITEMS_FILE_RE.fullmatch(base_name(k))]
    return events, items


def parse_timestamps(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Return ``frame`` with its ``timestamp`` column as UTC datetimes (naive values taken as UTC).

    Raises SourceError naming the file ``name`` and example values when a value is not an ISO
    8601 timestamp, or when one file mixes naive values with values carrying a UTC offset (which
    clock the naive ones use cannot be known).
    """
    if schema.TIMESTAMP not in frame.columns:
        return frame
    column = frame[schema.TIMESTAMP]
    if pd.api.types.is_datetime64_any_dtype(column):
        return frame.assign(**{schema.TIMESTAMP: pd.to_datetime(column, utc=True)})
    if pd.api.types.is_numeric_dtype(column):
        raise SourceError(
            f"column_type: {name} column 'timestamp' holds numbers (e.g. {column.dropna().head(3).tolist()}); "
            "write ISO 8601 timestamps or a Parquet timestamp column"
        )
    text = column.astype("str").where(column.notna())
    parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    bad = text.notna() & parsed.isna()
    if bad.any():
        raise SourceError(
            f"column_type: {name} column 'timestamp' must hold ISO 8601 timestamps; "
            f"cannot parse e.g. {text[bad].unique()[:5].tolist()}"
        )
    offset = text.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True, na=False)
    naive = text.notna() & ~offset
    if offset.any() and naive.any():
        raise SourceError(
            f"mixed_time_zones: {name} column 'timestamp' mixes values with a UTC offset "
            f"(e.g. {text[offset].head(2).tolist()}) and values without one (e.g. {text[naive].head(2).tolist()}); "
            "give every timestamp an offset, or none (read as UTC)"
        )
    return frame.assign(**{schema.TIMESTAMP: parsed})


def to_canonical(events_raw: pd.DataFrame, items_raw: pd.DataFrame | None) -> RawTables:
    """Conform already-canonical frames to the schema's columns and dtypes.

    Missing optional columns become nulls and extra columns are dropped; a missing required
    column is left for validation to report. A value that cannot be cast raises SourceError.
    """
    try:
        events = conform_events(events_raw)
        if items_raw is None:
            ids = events[schema.ITEM_ID] if schema.ITEM_ID in events.columns else pd.Series([], dtype="str")
            items_raw = pd.DataFrame({schema.ITEM_ID: ids.dropna().drop_duplicates()})
        items = conform_items(items_raw)
    except (ValueError, TypeError) as exc:
        raise SourceError(f"column_type: canonical files do not match the schema (DESIGN.md section 3): {exc}") from exc
    return RawTables(events=events, items=items, dropped={})


def read(store: ObjectStore, keys: list[str]) -> RawTables:
    """Read the canonical events (required) and items (optional) files among ``keys``."""
    events_keys, items_keys = select_files(keys)
    if not events_keys:
        raise SourceError(
            f"missing_file: no canonical events file among {[base_name(k) for k in keys]}: expected a file named "
            f"events{{{','.join(TABLE_SUFFIXES)}}} or events-<part><suffix> directly under the raw prefix"
        )
    events_raw = read_frames(store, events_keys, str_columns=_EVENT_STR_COLUMNS, prepare=parse_timestamps)
    items_raw = read_frames(store, items_keys, str_columns=_ITEM_STR_COLUMNS) if items_keys else None
    return to_canonical(events_raw, items_raw)
