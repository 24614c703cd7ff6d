"""The canonical source: events and items tables in the schema of DESIGN.md section 3, under the
shop's own names where ``data.mappings.<dataset>`` says so (:mod:`recsys_lib.sources.mapping`).

Files are daily landings (``events/dt=<day>/*``, ``items/dt=<day>/*``, see
:mod:`~recsys_lib.sources.landing`) or sit directly under the raw prefix: ``events.parquet`` /
``.csv`` / ``.csv.gz`` / ``.xlsx`` (or several ``events-<part>.<ext>``, concatenated in key order)
and the same for ``items``. Only the mapped columns are decoded. The items files are optional;
without them the catalogue is the event item ids with every other attribute null and
``available`` true. Timestamps are ISO 8601 by default (a naive value is read in the mapping's
time zone, UTC by default; one with an offset is converted to UTC). No rows are dropped
(``dropped`` is empty).
"""

from __future__ import annotations

import re

import pandas as pd

from recsys_lib import schema
from recsys_lib.config import DataConfig, SourceMapping
from recsys_lib.errors import SourceError
from recsys_lib.sources.base import RawTables, conform_events, conform_items
from recsys_lib.sources.files import TABLE_SUFFIXES, CsvDialect, base_name, read_frames
from recsys_lib.sources.landing import RawFiles
from recsys_lib.sources.mapping import map_event_types, parse_timestamps, rename, shop_columns
from recsys_lib.storage.objectstore import ObjectStore

EVENTS_FILE_RE = re.compile(r"events(-[^/]+)?\.(parquet|csv|csv\.gz|xlsx)", re.IGNORECASE)
ITEMS_FILE_RE = re.compile(r"items(-[^/]+)?\.(parquet|csv|csv\.gz|xlsx)", re.IGNORECASE)

_EVENT_STR_COLUMNS = (schema.USER_ID, schema.ITEM_ID, schema.EVENT_TYPE, schema.SESSION_ID, schema.TIMESTAMP)
_ITEM_STR_COLUMNS = (schema.ITEM_ID, schema.TITLE, schema.CATEGORY, schema.BRAND)


def select_files(keys: list[str]) -> tuple[list[str], list[str]]:
    """Split raw keys into (events keys, items keys) by file name; other files are ignored."""
    events = [k for k in keys if EVENTS_FILE_RE.fullmatch(base_name(k))]
    items = [k for k in keys if ITEMS_FILE_RE.fullmatch(base_name(k))]
    return events, items


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


def read(store: ObjectStore, files: RawFiles, data: DataConfig) -> RawTables:
    """Read the events (required) and items (optional) files of ``files``, through the dataset's
    mapping (``data.mapping``: column names, event names, timestamp format, CSV dialect)."""
    events_keys, items_keys = select_files(files.events) if files.flat else (files.events, files.items)
    if not events_keys:
        raise SourceError(
            f"missing_file: no canonical events file among {[base_name(k) for k in files.events]}: expected a file "
            f"named events{{{','.join(TABLE_SUFFIXES)}}} or events-<part><suffix> directly under the raw prefix"
        )
    mapping, dataset = data.mapping, data.dataset
    dialect = CsvDialect(mapping.delimiter, mapping.encoding)
    event_columns = shop_columns(mapping, "events")
    item_columns = shop_columns(mapping, "items")

    def prepare_events(frame: pd.DataFrame, uri: str) -> pd.DataFrame:
        frame = rename(frame, mapping, uri, dataset, "events")
        frame = map_event_types(frame, mapping, data.event_types, uri, dataset)
        return parse_timestamps(frame, mapping, uri, dataset)

    events_raw = read_frames(
        store,
        events_keys,
        str_columns=[s for s, c in event_columns.items() if c in _EVENT_STR_COLUMNS and not _numeric_time(c, mapping)],
        columns=event_columns,
        dialect=dialect,
        prepare=prepare_events,
    )
    items_raw = None
    if items_keys:
        items_raw = read_frames(
            store,
            items_keys,
            str_columns=[s for s, c in item_columns.items() if c in _ITEM_STR_COLUMNS],
            columns=item_columns,
            dialect=dialect,
            prepare=lambda frame, uri: rename(frame, mapping, uri, dataset, "items"),
        )
    return to_canonical(events_raw, items_raw)


def _numeric_time(column: str, mapping: SourceMapping) -> bool:
    return column == schema.TIMESTAMP and mapping.timestamp in ("epoch_s", "epoch_ms")
