"""All pipeline steps in order, in one process, without Airflow (CLI ``recsys retrain``), and any
one step alone (CLI ``recsys ingest``, ``validate``, ..., ``publish``).

The same ``run`` functions the DAG's tasks call, chained the way the DAG chains them, with the
wall time of each stage reported through ``on_stage``. A single stage finds its inputs where the
previous stage wrote them for that dataset and date (the storage layout of DESIGN.md section 4).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import time
from collections.abc import Callable, Mapping
from typing import Any

StageCallback = Callable[[str, dict[str, Any], float], None]
#: The stages in DAG order, as the CLI names them.
STAGES = ("ingest", "validate", "features", "train", "register", "export", "publish")


def retrain(
    params: Mapping[str, Any], ds: str, *, interval_end: str | None = None, on_stage: StageCallback | None = None
) -> dict[str, dict[str, Any]]:
    """Run ingest -> validate -> features -> train -> register -> export (every shard, then the
    item tables) -> publish for ``ds``."""
    from recsys_lib.pipelines import features, ingest, publish, register, train, validate

    results: dict[str, dict[str, Any]] = {}

    def stage(name: str, fn: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
        start = time.perf_counter()
        out = fn(params, ds, **kwargs)
        release_memory()
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
    exported = stage("export", export_all, features_uri=feats["features_uri"], snapshot_uri=snap["snapshot_uri"])
    stage("publish", publish.run, plan_uri=exported["plan_uri"])
    return results


def release_memory() -> None:
    """Give what the stage just run freed back to the operating system: stages hand their tables
    over through object storage, so nothing a stage allocated is needed by the next one, but
    Arrow's memory pool and glibc's heap keep freed pages resident unless asked to return them.
    (Under Airflow each task is its own process and this does not arise.)"""
    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()
    libc = ctypes.util.find_library("c")
    if libc and hasattr(ctypes.CDLL(libc), "malloc_trim"):  # glibc only
        ctypes.CDLL(libc).malloc_trim(0)


def export_all(
    params: Mapping[str, Any],
    ds: str,
    *,
    features_uri: str,
    snapshot_uri: str,
    on_shard: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """plan_export, then every shard in turn, then the item tables (what the DAG fans out);
    ``on_shard(done, total)`` after each shard."""
    from recsys_lib.pipelines import export

    jobs = export.plan(params, ds, features_uri=features_uri, snapshot_uri=snapshot_uri)
    plan_uri = jobs[0]["plan_uri"]
    shards = []
    for job in jobs:
        shards.append(export.run_shard(params, ds, plan_uri=plan_uri, shard=job["shard"]))
        if on_shard:
            on_shard(len(shards), len(jobs))
    items = export.run_items(params, ds, plan_uri=plan_uri)
    return {"plan_uri": plan_uri, "shards": len(shards), "rows": shards, "item_tables": items["rows"]}


def run_stage(
    stage: str,
    params: Mapping[str, Any],
    ds: str,
    *,
    run_id: str | None = None,
    plan_uri: str | None = None,
    interval_end: str | None = None,
    on_shard: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run one stage for ``ds``, reading what the earlier stages wrote for that dataset and date.

    ``register`` needs the training ``run_id`` (printed by ``train``); ``publish`` the
    ``plan_uri`` (printed by ``export``). Raises ConfigError for an unknown stage or a missing id.
    """
    from recsys_lib.errors import ConfigError
    from recsys_lib.pipelines import features, ingest, publish, register, train, validate
    from recsys_lib.pipelines.context import RunContext
    from recsys_lib.storage import layout

    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}; allowed: {', '.join(STAGES)}")
    ctx = RunContext.create(params, ds)
    store, dataset = ctx.store, ctx.dataset

    def prefix_uri(key: str) -> str:
        return store.uri(key.rsplit("/", 1)[0] + "/")

    ingested_uri = prefix_uri(layout.ingested_key(dataset, ds, "events"))
    snapshot_uri = prefix_uri(layout.snapshot_key(dataset, ds, "events"))
    features_uri = store.uri(layout.features_prefix(dataset, ds))
    if stage == "ingest":
        return ingest.run(params, ds, interval_end=interval_end)
    if stage == "validate":
        return validate.run(params, ds, ingested_uri=ingested_uri, interval_end=interval_end)
    if stage == "features":
        return features.run(params, ds, snapshot_uri=snapshot_uri)
    if stage == "train":
        return train.run(params, ds, features_uri=features_uri, snapshot_uri=snapshot_uri)
    if stage == "register":
        if not run_id:
            raise ConfigError("register needs --run-id: the MLflow run id the train stage printed")
        bundle_uri = store.uri(layout.model_prefix(dataset, ds, run_id))
        return register.run(params, ds, features_uri=features_uri, run_id=run_id, bundle_uri=bundle_uri)
    if stage == "export":
        return export_all(params, ds, features_uri=features_uri, snapshot_uri=snapshot_uri, on_shard=on_shard)
    if not plan_uri:
        raise ConfigError("publish needs --plan-uri: the plan the export stage printed")
    return publish.run(params, ds, plan_uri=plan_uri)
