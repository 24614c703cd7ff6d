"""All pipeline steps in order, in one process, without Airflow (CLI ``recsys retrain``).

The same ``run`` functions the DAG's tasks call, chained the way the DAG chains them, with the
wall time of each stage reported through ``on_stage``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

StageCallback = Callable[[str, dict[str, Any], float], None]


def retrain(
    params: Mapping[str, Any], ds: str, *, interval_end: str | None = None, on_stage: StageCallback | None = None
) -> dict[str, dict[str, Any]]:
    """Run ingest -> validate -> features -> train -> register -> export (every shard, then the
    item tables) -> publish for ``ds``."""
    from recsys_lib.pipelines import export, features, ingest, publish, register, train, validate

    results: dict[str, dict[str, Any]] = {}

    def stage(name: str, fn: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
        start = time.perf_counter()
        out = fn(params, ds, **kwargs)
        seconds = time.perf_counter() - start
        results[name] = {**out, "seconds": round(seconds, 2)}
        if on_stage:
            on_stage(name, out, seconds)
        return out

    ingested = stage("ingest_snapshot", ingest.run, interval_end=interval_end)
    snap = stage("validate", validate.run, ingested_uri=ingested["ingested_uri"], interval_end=interval_end)
    feats = stage("build_features", features.run, snapshot_uri=snap["snapshot_uri"])
    trained = stage("train", train.run, features_uri=feats["features_uri"], snapshot_uri=snap["snapshot_uri"])
    stage(
        "evaluate_and_register",
        register.run,
        features_uri=feats["features_uri"],
        run_id=trained["run_id"],
        bundle_uri=trained["bundle_uri"],
    )
    start = time.perf_counter()
    jobs = export.plan(params, ds, features_uri=feats["features_uri"], snapshot_uri=snap["snapshot_uri"])
    plan_uri = jobs[0]["plan_uri"]
    shards = [export.run_shard(params, ds, plan_uri=plan_uri, shard=job["shard"]) for job in jobs]
    items = export.run_items(params, ds, plan_uri=plan_uri)
    out = {"plan_uri": plan_uri, "shards": len(shards), "rows": shards, "item_tables": items["rows"]}
    results["export"] = {**out, "seconds": round(time.perf_counter() - start, 2)}
    if on_stage:
        on_stage("export", out, time.perf_counter() - start)
    stage("publish", publish.run, plan_uri=plan_uri)
    return results
