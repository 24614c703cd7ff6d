"""Task ``validate``: Great Expectations on the ingested tables; the validated snapshot, the
quarantine, the report and the Data Docs land in S3.

Order of writes: quarantine (or its removal), Data Docs, then the snapshot (only when the checks
pass), then ``report.json`` last; a later run reads the newest earlier report that passed as its
baseline for the volume and drift checks. Re-running a date rewrites the same keys.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from recsys_lib.errors import ObjectNotFoundError
from recsys_lib.pipelines.context import RunContext
from recsys_lib.sources import has_event_time
from recsys_lib.storage import layout
from recsys_lib.validation import raise_for_failures, validate_tables

log = logging.getLogger(__name__)
#: How many earlier validation reports are read looking for one that passed.
BASELINE_LOOKBACK = 30


def run(
    params: Mapping[str, Any] | None, ds: str, *, ingested_uri: str, interval_end: str | None = None
) -> dict[str, Any]:
    """Validate the ingested events and items of ``ds``; write the quarantine, the Data Docs, the
    validated snapshot and ``report.json``; raise DataValidationError naming each failed rule,
    column and example values when a ``fail`` rule breaks (nothing is written to the snapshot then).

    Returns the ``snapshot_uri``, the report and Data Docs URIs, and the row counts.
    """
    ctx = RunContext.create(params, ds, interval_end=interval_end)
    cfg, store = ctx.config, ctx.store
    prefix = store.key_from_uri(ingested_uri)
    events = store.get_frame(prefix + "events.parquet")
    items = store.get_frame(prefix + "items.parquet")
    history = cfg.data.history_days
    baseline_ds, baseline = previous_profile(ctx)
    with tempfile.TemporaryDirectory(prefix="recsys-gx-") as docs_dir:
        result = validate_tables(
            events,
            items,
            interval_end=ctx.interval_end,
            interval_start=ctx.interval_end - timedelta(days=history) if history else None,
            event_types=cfg.data.event_types,
            settings=cfg.validation,
            baseline=baseline,
            check_freshness=has_event_time(cfg.data.source),
            docs_dir=docs_dir,
        )
        report = result.report
        quarantine_key = layout.quarantine_key(ctx.dataset, ds)
        if len(result.rejected):
            store.put_frame(quarantine_key, result.rejected)
        else:
            store.delete([quarantine_key])  # a re-run with clean data leaves no stale quarantine
        docs_prefix = layout.data_docs_prefix(ctx.dataset, ds)
        if result.docs_site is None:  # docs_dir was given, so GX built the site
            raise RuntimeError("validation built no Data Docs site although a docs folder was given")
        store.delete([o.key for o in store.list_objects(docs_prefix)])
        for unused in result.docs_site.glob("static/images/*.gif"):  # GX tutorial animations, 3.4 MB, not linked
            unused.unlink()
        store.put_dir(result.docs_site, docs_prefix)
    if report.success:
        store.put_frame(layout.snapshot_key(ctx.dataset, ds, "events"), result.events)
        store.put_frame(layout.snapshot_key(ctx.dataset, ds, "items"), items)
    report_key = layout.validation_report_key(ctx.dataset, ds)
    store.put_json(
        report_key,
        {
            "ingested_uri": ingested_uri,
            "interval_end": ctx.interval_end.isoformat(),
            "baseline_ds": baseline_ds,
            "quarantine_uri": store.uri(quarantine_key) if len(result.rejected) else None,
            "data_docs_uri": store.uri(docs_prefix + "index.html"),
            **report.to_dict(),
        },
    )
    report_uri = store.uri(report_key)
    _log(report, baseline_ds, store.uri(quarantine_key), store.uri(docs_prefix + "index.html"))
    raise_for_failures(report, report_uri)
    snapshot = layout.snapshot_key(ctx.dataset, ds, "events").rsplit("/", 1)[0] + "/"
    return {
        "snapshot_uri": store.uri(snapshot),
        "report_uri": report_uri,
        "data_docs_uri": store.uri(docs_prefix + "index.html"),
        "rules": len(report.outcomes),
        "events": len(result.events),
        "quarantined": report.quarantined,
        "warnings": len(report.warnings()),
    }


def previous_profile(ctx: RunContext) -> tuple[str | None, dict[str, Any] | None]:
    """(date, profile) of the newest validation report before ``ctx.ds`` that passed, if any."""
    dates = layout.partition_dates(ctx.store.list_prefixes(layout.validation_root(ctx.dataset)))
    earlier = [d for d in dates if d < ctx.ds][:BASELINE_LOOKBACK]
    for day in earlier:
        try:
            report = ctx.store.get_json(layout.validation_report_key(ctx.dataset, day))
        except ObjectNotFoundError:
            continue
        if report.get("success") and report.get("profile"):
            return day, report["profile"]
    return None, None


def _log(report: Any, baseline_ds: str | None, quarantine_uri: str, docs_uri: str) -> None:
    log.info(
        "validation %s: %d rules, %d failed, %d warnings; %d of %d events quarantined; baseline %s; Data Docs %s",
        "passed" if report.success else "FAILED",
        len(report.outcomes),
        len(report.failures()),
        len(report.warnings()),
        report.quarantined,
        report.row_counts.get("events", 0),
        baseline_ds or "none (first validated snapshot)",
        docs_uri,
    )
    for outcome in report.warnings():
        log.warning("validation warning: %s", outcome.describe())
    if report.quarantined:
        log.warning("quarantined %d rows to %s:", report.quarantined, quarantine_uri)
        for outcome in report.quarantine_rules():
            log.warning("  %s", outcome.describe())
