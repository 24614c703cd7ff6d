"""Task ``build_features``: validated snapshot -> encoders, weighted interactions, temporal splits."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from recsys_lib.features import build_features
from recsys_lib.features.build import EVENT_COLUMNS
from recsys_lib.pipelines.context import RunContext
from recsys_lib.serving.rules import rules_for
from recsys_lib.storage import layout

log = logging.getLogger(__name__)


def run(params: Mapping[str, Any] | None, ds: str, *, snapshot_uri: str) -> dict[str, Any]:
    """Build the features of the validated snapshot at ``snapshot_uri`` and write them under
    ``features/dataset=<d>/dt=<ds>/``, replacing an earlier run's; returns ``features_uri`` and
    row counts per table.

    The business rules (``recommend.*``) are checked against the catalogue here, so that a rule
    naming a category, brand or item the shop does not have stops the run (ConfigError naming the
    key) before training rather than at the export."""
    ctx = RunContext.create(params, ds)
    prefix = ctx.store.key_from_uri(snapshot_uri)
    events = ctx.store.get_frame(prefix + "events.parquet", columns=EVENT_COLUMNS)  # price, session, ...: not read
    items = ctx.store.get_frame(prefix + "items.parquet")
    features = build_features(events, items, ctx.config.features)
    rules_for(ctx.config.recommend, features)  # ConfigError naming the key of a rule the catalogue cannot meet
    out = layout.features_prefix(ctx.dataset, ds)
    counts = features.save(ctx.store, out)
    log.info("features %s: %s", ctx.store.uri(out), counts)
    return {"features_uri": ctx.store.uri(out), **counts}
