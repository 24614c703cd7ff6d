"""Task ``ingest_snapshot``: raw files -> canonical tables under ``ingested/`` for the logical date.

Nothing here is trusted yet: the validate task reads these tables and writes the snapshot.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from recsys_lib.pipelines.context import RunContext
from recsys_lib.sources import read_source
from recsys_lib.storage import layout

log = logging.getLogger(__name__)


def run(params: Mapping[str, Any] | None, ds: str, *, interval_end: str | None = None) -> dict[str, Any]:
    """Read the run's raw files (the daily landings of the training window that ends with the data
    interval, :attr:`RunContext.last_day`, or the flat files of ``raw/<dataset>/``) through the
    configured source adapter and write the canonical tables for ``ds``.

    Re-running a date rewrites the same keys. Raises SourceError (a DataValidationError) when a
    raw file cannot be read or converted, the window is empty or the mapping does not fit.
    Returns the ``ingested_uri`` prefix, row counts and the landings read.
    """
    ctx = RunContext.create(params, ds, interval_end=interval_end)
    raw = read_source(ctx.store, ctx.config.data, ctx.last_day)
    files = raw.files
    if files is not None and not files.flat:
        log.info(
            "reading %d events landing(s) %s..%s (window_days=%s) and catalogue snapshot %s: %d file(s)",
            len(files.days),
            files.days[0],
            files.days[-1],
            ctx.config.data.window_days,
            files.catalogue_day or "none (items from the events)",
            len(files.events) + len(files.items),
        )
    for table, frame in (("events", raw.events), ("items", raw.items)):
        ctx.store.put_frame(layout.ingested_key(ctx.dataset, ds, table), frame)
    prefix = layout.ingested_key(ctx.dataset, ds, "events").rsplit("/", 1)[0] + "/"
    log.info(
        "ingested %s: %d events, %d items, dropped by source rules: %s",
        ctx.store.uri(prefix),
        len(raw.events),
        len(raw.items),
        raw.dropped or "none",
    )
    return {
        "ingested_uri": ctx.store.uri(prefix),
        "events": len(raw.events),
        "items": len(raw.items),
        "dropped": dict(raw.dropped),
        "landings": list(files.days) if files is not None else [],
        "catalogue_day": files.catalogue_day if files is not None else None,
    }
