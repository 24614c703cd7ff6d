"""Which raw files a run reads: daily landings pruned to the training window, or the flat layout.

Upstream systems land one folder per day and table (DESIGN.md section 4)::

    raw/<dataset>/events/dt=2026-11-28/part-0001.csv.gz ...   events of that day, any number of files
    raw/<dataset>/items/dt=2026-11-28/catalogue.parquet        a catalogue snapshot (optional)

A run whose data interval covers up to day L (:attr:`~recsys_lib.pipelines.context.RunContext.last_day`)
reads the events landings in (L - window, L] and the newest catalogue snapshot not after L. Pruning
happens on the folder names (one listing of ``dt=`` names), so a file
outside the window is never listed, fetched or decoded, and a landing after D (a backfill's
future) is never seen. Datasets without ``events/dt=`` folders use the flat layout of files
directly under ``raw/<dataset>/`` (events filtered to the window by timestamp later, see
:func:`window_start`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from recsys_lib.errors import ConfigError, SourceError
from recsys_lib.sources.files import SUPPORTED_SUFFIXES, list_raw_files
from recsys_lib.storage import layout
from recsys_lib.storage.objectstore import ObjectStore

_PARTITION_RE = re.compile(r"dt=(\d{4}-\d{2}-\d{2})/$")


@dataclass(frozen=True)
class RawFiles:
    """The raw object keys one run reads, in read order (by day, then key).

    ``flat``: the files directly under ``raw/<dataset>/`` (the adapter tells events from items by
    name); else ``events`` holds the window's landings and ``items`` the catalogue snapshot's files.
    """

    events: list[str]
    items: list[str]
    flat: bool
    days: tuple[str, ...] = ()
    """The ``dt=`` landings read (partitioned layout), oldest first."""
    catalogue_day: str | None = None
    """The ``dt=`` of the catalogue snapshot read, if any."""


def window_start(last_day: str, window_days: int | None) -> date | None:
    """First day inside the window (L - window, L] ending on ``last_day``; None for no lower bound."""
    if window_days is None:
        return None
    return date.fromisoformat(last_day) - timedelta(days=window_days - 1)


def window_start_time(last_day: str, window_days: int | None) -> datetime | None:
    """Midnight UTC of :func:`window_start`: events before it are outside the window."""
    first = window_start(last_day, window_days)
    return None if first is None else datetime.combine(first, datetime.min.time(), tzinfo=UTC)


def partition_days(store: ObjectStore, prefix: str) -> dict[str, str]:
    """``{day: folder prefix}`` of the ``dt=YYYY-MM-DD/`` folders directly under ``prefix``.

    Raises SourceError naming the folder when a ``dt=`` name is not a calendar date."""
    days = {}
    for folder in store.list_prefixes(prefix):
        name = folder[len(prefix) :]
        if not name.startswith("dt="):
            continue
        match = _PARTITION_RE.fullmatch(name)
        try:
            day = layout.check_ds(match.group(1)) if match else None
        except ConfigError:
            day = None
        if day is None:
            raise SourceError(
                f"partition_key: {store.uri(folder)} is not a daily landing: folder names must be dt=YYYY-MM-DD "
                f"(e.g. dt=2026-11-28)"
            )
        days[day] = folder
    return days


def find_raw_files(store: ObjectStore, dataset: str, last_day: str | None, window_days: int | None) -> RawFiles:
    """The files a run whose data ends with day ``last_day`` reads (see the module docstring);
    ``last_day=None``: every landing (and the newest catalogue snapshot), no window.

    Raises SourceError (rule first) when no raw file is there at all (``missing_file``), when the
    window holds no events landing (``empty_window``), or when catalogue snapshots exist but none
    is dated on or before ``last_day`` (``catalogue_snapshot``)."""
    events_prefix = layout.raw_table_prefix(dataset, "events")
    event_days = partition_days(store, events_prefix)
    if not event_days:
        keys = list_raw_files(store, layout.raw_prefix(dataset))
        if not keys:
            raise SourceError(
                f"missing_file: no raw files under {store.uri(layout.raw_prefix(dataset))}: land daily folders "
                f"events/dt=YYYY-MM-DD/ or upload {', '.join(SUPPORTED_SUFFIXES)} files there before ingesting "
                f"dataset {dataset!r}"
            )
        return RawFiles(events=keys, items=[], flat=True)
    catalogue_by = last_day  # None: the newest snapshot, whatever its date
    if last_day is None:
        last_day, window_days = max(event_days), None
    first = window_start(last_day, window_days)
    days = sorted(d for d in event_days if d <= last_day and (first is None or date.fromisoformat(d) >= first))
    if not days:
        window = f"({first - timedelta(days=1)}, {last_day}]" if first else f"up to {last_day}"
        raise SourceError(
            f"empty_window: no events landing in {window} under {store.uri(events_prefix)} "
            f"(landings from {min(event_days)} to {max(event_days)}); check data.window_days or the logical date"
        )
    events = [k for d in days for k in list_raw_files(store, event_days[d])]
    if not events:
        raise SourceError(
            f"empty_window: the events landings {days[0]}..{days[-1]} under {store.uri(events_prefix)} hold no "
            f"{', '.join(SUPPORTED_SUFFIXES)} files"
        )
    items, catalogue_day = _catalogue(store, dataset, catalogue_by)
    return RawFiles(events=events, items=items, flat=False, days=tuple(days), catalogue_day=catalogue_day)


def _catalogue(store: ObjectStore, dataset: str, last_day: str | None) -> tuple[list[str], str | None]:
    prefix = layout.raw_table_prefix(dataset, "items")
    item_days = partition_days(store, prefix)
    if not item_days:
        return [], None
    usable = [d for d in item_days if last_day is None or d <= last_day]
    if not usable:
        raise SourceError(
            f"catalogue_snapshot: no catalogue landing on or before {last_day} under {store.uri(prefix)} "
            f"(the oldest is dt={min(item_days)}); land items/dt=<day>/ for that date or run a later date"
        )
    day = max(usable)
    keys = list_raw_files(store, item_days[day])
    if not keys:
        raise SourceError(f"catalogue_snapshot: {store.uri(item_days[day])} holds no readable catalogue file")
    return keys, day
