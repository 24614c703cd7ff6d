"""A worker killed in the middle of an export shard (SIGKILL, a real process) publishes nothing;
the retried shard completes the export, and readers saw the previous one all along."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from recsys_lib import schema
from recsys_lib.errors import StorageError
from recsys_lib.storage import layout
from tests.integration.conftest import shop_in_store

pytestmark = [pytest.mark.faults, pytest.mark.integration]

DATASET = "killed-shop"
DAY1, DAY2 = "2026-07-01", "2026-07-02"
PARAMS = {"dataset": DATASET, "epochs": 2, "embedding_dim": 8, "k": 5, "export_shards": 2, "export.rows_per_file": 40}

#: Runs one export shard and stops forever after its first Parquet part is written: the parent
#: kills it there, between parts, before the shard's _parts.json.
_SHARD = """
import sys, time
from recsys_lib.storage import ObjectStore
from recsys_lib.pipelines import export
put = ObjectStore.put_bytes
def put_then_hang(self, key, data, **kw):
    etag = put(self, key, data, **kw)
    if key.endswith(".parquet"):
        print("PART", key, flush=True)
        time.sleep(600)
    return etag
ObjectStore.put_bytes = put_then_hang
export.run_shard({params!r}, {ds!r}, plan_uri={plan!r}, shard=0)
"""


def _up_to_plan(ds: str) -> str:
    from recsys_lib.pipelines import export, features, ingest, register, train, validate

    snap = validate.run(PARAMS, ds, ingested_uri=ingest.run(PARAMS, ds)["ingested_uri"])
    feats = features.run(PARAMS, ds, snapshot_uri=snap["snapshot_uri"])
    trained = train.run(PARAMS, ds, features_uri=feats["features_uri"], snapshot_uri=snap["snapshot_uri"])
    register.run(
        PARAMS, ds, features_uri=feats["features_uri"], run_id=trained["run_id"], bundle_uri=trained["bundle_uri"]
    )
    return export.plan(PARAMS, ds, features_uri=feats["features_uri"], snapshot_uri=snap["snapshot_uri"])[0]["plan_uri"]


def test_a_shard_killed_mid_write_publishes_nothing_and_its_retry_completes_the_export(local_stack) -> None:
    from recsys_lib.export import read_manifest, read_recommendations
    from recsys_lib.pipelines import export, publish
    from recsys_lib.pipelines.runner import retrain

    store = shop_in_store(
        local_stack.bucket, DATASET, end=datetime(2026, 7, 2, tzinfo=UTC), n_users=120, n_items=60, days=20, seed=9
    )
    retrain(PARAMS, DAY1)  # the last good export
    pointer = store.get_bytes(layout.latest_pointer_key("user_topk", DATASET))

    plan_uri = _up_to_plan(DAY2)
    worker = subprocess.Popen(
        [sys.executable, "-c", _SHARD.format(params=PARAMS, ds=DAY2, plan=plan_uri)],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        line = worker.stdout.readline()  # the first part is on S3
        assert line.startswith("PART"), line
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)

    export.run_shard(PARAMS, DAY2, plan_uri=plan_uri, shard=1)
    export.run_items(PARAMS, DAY2, plan_uri=plan_uri)
    with pytest.raises(StorageError, match=r"shard\(s\) \[0\] of 2 did not finish"):
        publish.run(PARAMS, DAY2, plan_uri=plan_uri)
    assert store.get_bytes(layout.latest_pointer_key("user_topk", DATASET)) == pointer  # readers still see day 1
    assert read_manifest(store, DATASET)["dt"] == DAY1

    export.run_shard(PARAMS, DAY2, plan_uri=plan_uri, shard=0)  # the task retry
    publish.run(PARAMS, DAY2, plan_uri=plan_uri)
    recs = read_recommendations(store, DATASET)
    events = store.get_frame(layout.snapshot_key(DATASET, DAY2, "events"))
    assert read_manifest(store, DATASET)["dt"] == DAY2
    assert set(recs[schema.USER_ID]) == set(events[schema.USER_ID])  # every user, once each
    assert (recs.groupby(schema.USER_ID).size() == 5).all()
    assert not [o.key for o in store.list_objects(f"exports/user_topk/dataset={DATASET}/_staging/")]
