"""``recsys simulate``: the days after the latest export in a synthetic shop that responds to it.

Reads the generator's arguments (``raw/<dataset>/_synthetic.json``), rebuilds the shop's planted
truth, reads the latest published ``user_topk`` export (date D) and lands the simulated events of
each day D + 1 ... as ``raw/<dataset>/events/dt=<day>/part-simulated.parquet``, next to the
upstream landings, so the next ingest and the outcome report read them like any other day.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from recsys_lib import schema
from recsys_lib.errors import ConfigError, SourceError
from recsys_lib.export.reader import read_manifest, read_recommendations
from recsys_lib.outcomes.simulate import simulate_days
from recsys_lib.pipelines.context import RunContext
from recsys_lib.sources.landing import partition_days
from recsys_lib.sources.synthetic import shop_truth
from recsys_lib.sources.synthetic_params import TRUTH_KEYS, read_shop_params
from recsys_lib.storage import ObjectStore, layout

log = logging.getLogger(__name__)
PART_NAME = "part-simulated.parquet"
_ANY_DS = "2000-01-01"  # the first context only reads config and storage; the run's date is the export's


def _check_landings(store: ObjectStore, dataset: str) -> None:
    """Refuse a flat-layout dataset: a daily landing there would hide its flat files from readers."""
    prefix = layout.raw_table_prefix(dataset, "events")
    if not partition_days(store, prefix):
        raise SourceError(
            f"flat_layout: dataset {dataset!r} has no daily landings under {store.uri(prefix)}, so simulated days "
            f"landed there would hide its flat files from every reader; run `recsys generate --partitioned` first"
        )


def _days(export_dt: str, days: int, start: str | None) -> list[date]:
    """``days`` consecutive days from ``start`` (default: the day after the export)."""
    first = date.fromisoformat(layout.check_ds(start)) if start else date.fromisoformat(export_dt) + timedelta(days=1)
    if first.isoformat() <= export_dt:
        raise ConfigError(
            f"simulate: start must be after the export date {export_dt} (shoppers see it then), got {start}"
        )
    return [first + timedelta(days=d) for d in range(days)]


def run(params: Mapping[str, Any] | None, *, days: int, seed: int = 0, start: str | None = None) -> dict[str, Any]:
    """Simulate ``days`` days (from ``start``, default the day after the latest export) of the
    dataset's synthetic shop responding to that export, and land each day's events.

    Re-running replaces the same keys. Raises SourceError when the dataset has no generator
    arguments (not made by ``recsys generate``) or no daily events landings (``flat_layout``),
    ExportNotFoundError when nothing is published, ConfigError for bad ``days`` or ``start``.
    Returns the days landed, event counts by kind and the export date.
    """
    if days < 1:
        raise ConfigError(f"simulate: days must be >= 1, got {days}")
    probe = RunContext.create(params, _ANY_DS)
    manifest = read_manifest(probe.store, probe.dataset)
    export_dt = str(manifest["dt"])
    ctx = RunContext.create(params, export_dt)
    store, dataset = ctx.store, ctx.dataset
    _check_landings(store, dataset)
    simulated = _days(export_dt, days, start)
    shop = read_shop_params(store, dataset)
    truth = shop_truth(**{k: int(shop[k]) for k in TRUTH_KEYS})
    recommendations = read_recommendations(store, dataset, export_dt)
    events = simulate_days(truth, recommendations, simulated, seed=seed)
    day_of = events[schema.TIMESTAMP].dt.date
    for day in simulated:
        key = layout.raw_partition_prefix(dataset, "events", day.isoformat()) + PART_NAME
        store.put_frame(key, events[day_of == day].reset_index(drop=True))
    kinds = events[schema.EVENT_TYPE].value_counts()
    log.info("simulated %d day(s) after export %s: %d events %s", len(simulated), export_dt, len(events), dict(kinds))
    return {
        "days": [d.isoformat() for d in simulated],
        "events": len(events),
        "impressions": int(kinds.get(schema.IMPRESSION, 0)),
        "clicks": int(kinds.get(schema.CLICK, 0)),
        "purchases": int(kinds.get(schema.PURCHASE, 0)),
        "export_dt": export_dt,
        "events_uri": store.uri(layout.raw_table_prefix(dataset, "events")),
    }
