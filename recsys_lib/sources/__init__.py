"""Source adapters: raw shop data under ``raw/<dataset>/`` to the canonical events and items tables.

``read_source(store, data, ds)`` finds the run's files (daily landings in the training window, or
the flat layout: :mod:`.landing`) and reads them with the adapter named in ``data.source``:

* ``canonical``: events/items Parquet, CSV or Excel in the schema, or in the shop's own names
  mapped by ``data.mappings`` (:mod:`.canonical`, :mod:`.mapping`);
* ``uci_retail``: the UCI Online Retail invoice lines (:mod:`.uci_retail`);
* ``sequences``: ``user item item ...`` or ``user item`` text files (:mod:`.sequences`).

The synthetic generator (:func:`.synthetic.generate_shop`) makes a shop for demos and tests;
``write_raw`` stores such frames as canonical raw files.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

import pandas as pd

from recsys_lib import schema
from recsys_lib.config import DataConfig
from recsys_lib.errors import SourceError
from recsys_lib.sources import canonical, sequences, uci_retail
from recsys_lib.sources.base import RawTables, SourceReader, conform_events, conform_items
from recsys_lib.sources.files import list_raw_files
from recsys_lib.sources.landing import find_raw_files, window_start_time
from recsys_lib.storage import layout
from recsys_lib.storage.objectstore import ObjectStore

_READERS: dict[str, SourceReader] = {
    "canonical": canonical.read,
    "uci_retail": uci_retail.read,
    "sequences": sequences.read,
}
SOURCES: tuple[str, ...] = tuple(_READERS)
#: Sources whose timestamps are positions, not times (freshness means nothing there).
_NO_EVENT_TIME = frozenset({"sequences"})


def has_event_time(source: str) -> bool:
    """Whether the source's timestamps are real event times (so freshness can be checked)."""
    return source not in _NO_EVENT_TIME


def read_source(store: ObjectStore, data: DataConfig, last_day: str | None = None) -> RawTables:
    """Read dataset ``data.dataset``'s raw files up to day ``last_day`` through the adapter named
    ``data.source``: the daily landings in the window (last_day - ``data.window_days``, last_day]
    and the newest catalogue snapshot not after last_day (:mod:`.landing`), or the flat files under
    ``raw/<dataset>/`` (events then kept to the window by timestamp, counted in
    ``dropped["outside_window"]``). ``last_day=None`` reads every landing.

    Raises SourceError (rule first) when no raw file is there, the window is empty, a file cannot
    be read or converted, or the mapping does not fit (the message names the object).
    """
    if data.source not in _READERS:
        raise SourceError(f"unknown source {data.source!r}; allowed: {', '.join(SOURCES)} (config key data.source)")
    window = data.window_days if last_day else None
    files = find_raw_files(store, data.dataset, last_day, window)
    tables = _READERS[data.source](store, files, data)
    start = window_start_time(last_day, window) if last_day is not None else None
    if files.flat and start is not None and has_event_time(data.source):
        tables = _keep_window(tables, start)
    return dataclasses.replace(tables, files=files)


def _keep_window(tables: RawTables, start: datetime) -> RawTables:
    """Drop flat-layout events older than the window's first day (``dropped["outside_window"]``)."""
    inside = tables.events[schema.TIMESTAMP].isna() | (tables.events[schema.TIMESTAMP] >= pd.Timestamp(start))
    dropped = {**tables.dropped, "outside_window": int((~inside).sum())}
    return dataclasses.replace(tables, events=tables.events[inside].reset_index(drop=True), dropped=dropped)


def write_raw(store: ObjectStore, dataset: str, events: pd.DataFrame, items: pd.DataFrame) -> list[str]:
    """Store canonical ``events`` and ``items`` as ``raw/<dataset>/{events,items}.parquet``.

    Both frames are conformed to the schema first. Other canonical events/items files directly
    under the prefix (``events-*.csv``, ...) are deleted, so ``read_source("canonical", ...)``
    returns exactly what was written; other raw files are left alone. Returns the two S3 URIs.
    """
    prefix = layout.raw_prefix(dataset)
    events_key, items_key = f"{prefix}events.parquet", f"{prefix}items.parquet"
    stale_events, stale_items = canonical.select_files(list_raw_files(store, prefix))
    store.put_frame(events_key, conform_events(events))
    store.put_frame(items_key, conform_items(items))
    store.delete([k for k in stale_events + stale_items if k not in (events_key, items_key)])
    return [store.uri(events_key), store.uri(items_key)]


def write_landings(
    store: ObjectStore,
    dataset: str,
    events: pd.DataFrame,
    items: pd.DataFrame,
    *,
    catalogue_days: list[str] | None = None,
) -> list[str]:
    """Land canonical ``events`` as daily partitions ``raw/<dataset>/events/dt=<day>/part-0.parquet``
    (one per UTC day of their timestamps) and ``items`` as a catalogue snapshot on each of
    ``catalogue_days`` (default: the first day), the way an upstream system would. Returns the
    days landed, oldest first."""
    events = conform_events(events)
    day = events[schema.TIMESTAMP].dt.strftime("%Y-%m-%d")
    if catalogue_days is None:
        catalogue_days = [day.min()]
    for value, frame in events.groupby(day, sort=True):
        store.put_frame(layout.raw_partition_prefix(dataset, "events", str(value)) + "part-0.parquet", frame)
    for value in catalogue_days:
        store.put_frame(
            layout.raw_partition_prefix(dataset, "items", value) + "catalogue.parquet", conform_items(items)
        )
    return sorted(day.unique().tolist())


def write_synthetic_shop(
    store: ObjectStore, dataset: str, *, end: datetime, partitioned: bool = True, **shop: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate a synthetic shop (``generate_shop(end=end, **shop)``), store it as raw input of
    ``dataset`` (daily landings, or the flat files with ``partitioned=False``) and record the
    generator's arguments (``raw/<dataset>/_synthetic.json``) so ``recsys simulate`` can rebuild its
    planted truth. Returns the (events, items) written."""
    from recsys_lib.sources.synthetic import N_BRANDS, N_CATEGORIES, generate_shop
    from recsys_lib.sources.synthetic_params import write_shop_params

    shop = {"n_categories": N_CATEGORIES, "n_brands": N_BRANDS, **shop}
    events, items = generate_shop(end=end, **shop)
    if partitioned:
        write_landings(store, dataset, events, items)
    else:
        write_raw(store, dataset, events, items)
    write_shop_params(store, dataset, {**shop, "end": end.date().isoformat()})
    return events, items


__all__ = [
    "SOURCES",
    "RawTables",
    "has_event_time",
    "read_source",
    "write_landings",
    "write_raw",
    "write_synthetic_shop",
]
