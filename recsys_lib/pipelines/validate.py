"""Task ``validate``: Great Expectations checks on the snapshot; the report always lands in S3."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from recsys_lib.pipelines.context import RunContext
from recsys_lib.storage import layout
from recsys_lib.validation import raise_for_failures, validate_tables

log = logging.getLogger(__name__)


def run(
    params: Mapping[str, Any] | None, ds: str, *, snapshot_uri: str, interval_end: str | None = None
) -> dict[str, Any]:
    """Validate the snapshot's events and items; write ``report.json``; raise DataValidationError
    naming each failed rule, column and example values when anything fails."""
    ctx = RunContext.create(params, ds, interval_end=interval_end)
    prefix = ctx.store.key_from_uri(snapshot_uri)
    events = ctx.store.get_frame(prefix + "events.parquet")
    items = ctx.store.get_frame(prefix + "items.parquet")
    history = ctx.config.data.history_days
    start = ctx.interval_end - timedelta(days=history) if history else None
    report = validate_tables(
        events, items, interval_end=ctx.interval_end, interval_start=start, event_types=ctx.config.data.event_types
    )
    key = layout.validation_report_key(ctx.dataset, ds)
    ctx.store.put_json(
        key, {"snapshot_uri": snapshot_uri, "interval_end": ctx.interval_end.isoformat(), **report.to_dict()}
    )
    report_uri = ctx.store.uri(key)
    log.info(
        "validation %s: %d rules, %d failed",
        "passed" if report.success else "FAILED",
        len(report.outcomes),
        len(report.failures()),
    )
    raise_for_failures(report, report_uri)
    return {"report_uri": report_uri, "rules": len(report.outcomes), "events": report.row_counts.get("events", 0)}
