"""Source adapters: raw shop data under ``raw/<dataset>/`` to the canonical events and items tables.

``read_source(name, store, dataset)`` picks the adapter named in the config (``data.source``):

* ``canonical``: events/items Parquet or CSV already in the schema (:mod:`.canonical`);
* ``uci_retail``: the UCI Online Retail invoice lines (:mod:`.uci_retail`);
* ``sequences``: ``user item item ...`` or ``user item`` text files (:mod:`.sequences`).

The synthetic generator (:func:`.synthetic.generate_shop`) makes a shop for demos and tests;
``write_raw`` stores such frames as canonical raw files.
"""

from __future__ import annotations

import pandas as pd

from recsys_lib.errors import SourceError
from recsys_lib.sources import canonical, sequences, uci_retail
from recsys_lib.sources.base import RawTables, SourceReader, conform_events, conform_items
from recsys_lib.sources.files import SUPPORTED_SUFFIXES, list_raw_files
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


def read_source(source: str, store: ObjectStore, dataset: str) -> RawTables:
    """Read the raw files directly under ``raw/<dataset>/`` through the adapter named ``source``.

    Raises SourceError for an unknown source, when no readable raw file is there, or when a file
    cannot be read or converted (the message names the object).
    """
    if source not in _READERS:
        raise SourceError(f"unknown source {source!r}; allowed: {', '.join(SOURCES)} (config key data.source)")
    prefix = layout.raw_prefix(dataset)
    keys = list_raw_files(store, prefix)
    if not keys:
        raise SourceError(
            f"no raw files under {store.uri(prefix)}: upload {', '.join(SUPPORTED_SUFFIXES)} files there "
            f"(or call recsys_lib.sources.write_raw) before ingesting dataset {dataset!r}"
        )
    return _READERS[source](store, keys)


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


__all__ = ["SOURCES", "RawTables", "has_event_time", "read_source", "write_raw"]
