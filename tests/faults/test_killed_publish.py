"""A publish process SIGKILLed between two tables of an export (a real process, the real moto
server) leaves every table's "latest" on the previous export: never ``user_topk`` of one day with
``similar_items`` or embeddings of another. The retried task completes the set."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from recsys_lib.export import read_recommendations
from recsys_lib.pipelines import publish
from recsys_lib.storage import ObjectStore, layout
from tests.staged_export import TABLES, latest_versions, stage_export

pytestmark = [pytest.mark.faults, pytest.mark.integration]

DATASET = "killed-publish-shop"
DAY1, DAY2 = "2026-09-01", "2026-09-02"
USERS = [f"shopper-{u}" for u in range(5)]
PARAMS = {"dataset": DATASET}

#: Publishes day 2 and stops forever once its second table is in place: the parent kills it there,
#: after item_embeddings and similar_items, before user_topk and the pointer.
_PUBLISH = """
import time
from recsys_lib.pipelines import publish
partition = publish.publish_partition
done = []
def publish_then_hang(store, table, *args, **kwargs):
    manifest = partition(store, table, *args, **kwargs)
    done.append(table)
    print("PUBLISHED", table, flush=True)
    if len(done) == 2:
        time.sleep(600)
    return manifest
publish.publish_partition = publish_then_hang
publish.run({params!r}, {ds!r}, plan_uri={plan!r})
"""


def test_a_publish_killed_between_two_tables_moves_no_tables_latest(local_stack) -> None:
    store = ObjectStore(local_stack.bucket)
    publish.run(PARAMS, DAY1, plan_uri=stage_export(store, DATASET, DAY1, "1", USERS))
    pointer = store.get_bytes(layout.export_set_pointer_key(DATASET))
    plan_uri = stage_export(store, DATASET, DAY2, "2", USERS)

    worker = subprocess.Popen(
        [sys.executable, "-c", _PUBLISH.format(params=PARAMS, ds=DAY2, plan=plan_uri)],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        published = [worker.stdout.readline().split() for _ in range(2)]  # type: ignore[union-attr]
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)
    assert published == [["PUBLISHED", "item_embeddings"], ["PUBLISHED", "similar_items"]]

    assert store.get_bytes(layout.export_set_pointer_key(DATASET)) == pointer
    assert latest_versions(store, DATASET) == {t: {"1"} for t in TABLES}  # one export, day 1's, for every table
    killed_day = read_recommendations(store, DATASET, DAY2, table="similar_items")  # in place, by date only
    assert set(killed_day["model_version"]) == {"2"}

    out = publish.run(PARAMS, DAY2, plan_uri=plan_uri)  # the task's retry
    assert out["latest_dt"] == DAY2 and set(out["tables"]) == set(TABLES)
    assert latest_versions(store, DATASET) == {t: {"2"} for t in TABLES}
    assert not [o.key for o in store.list_objects("exports/") if "/_staging/" in o.key and DATASET in o.key]
