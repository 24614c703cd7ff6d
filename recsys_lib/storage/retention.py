"""Retention: intermediate partitions of old logical dates, and export staging nobody will publish.

Each run writes ``ingested/``, ``snapshots/``, ``quarantine/``, ``features/`` and ``models/``
partitions for its logical date and stages exports under ``_staging/``. Published exports, their
pointers and the validation reports (the drift checks' baseline) are never pruned here.
"""

from __future__ import annotations

from datetime import date, timedelta

from recsys_lib.storage import layout
from recsys_lib.storage.objectstore import ObjectStore


def clear_staging(store: ObjectStore, dataset: str, ds: str) -> int:
    """Delete every export attempt staged for ``ds`` (an interrupted run's leftovers included), in
    every table; run after the date's export is published. Returns the number of objects deleted."""
    keys = []
    for table in layout.EXPORT_TABLES:
        keys += [o.key for o in store.list_objects(layout.export_staging_root(table, dataset) + f"dt={ds}/")]
    store.delete(keys)
    return len(keys)


def prune(store: ObjectStore, dataset: str, ds: str, keep_days: int) -> dict[str, int]:
    """Delete the intermediate partitions and export staging of logical dates more than
    ``keep_days`` days before ``ds``. Returns the number of partitions deleted per table."""
    cutoff = (date.fromisoformat(layout.check_ds(ds)) - timedelta(days=keep_days)).isoformat()
    roots = {t: layout.table_root(t, dataset) for t in layout.INTERMEDIATE_TABLES}
    roots |= {f"{t}/_staging": layout.export_staging_root(t, dataset) for t in layout.EXPORT_TABLES}
    deleted: dict[str, int] = {}
    for name, root in roots.items():
        old = [d for d in layout.partition_dates(store.list_prefixes(root)) if d < cutoff]
        for day in old:
            store.delete([o.key for o in store.list_objects(f"{root}dt={day}/")])
        if old:
            deleted[name] = len(old)
    return deleted
