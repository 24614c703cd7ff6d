"""Two retrains for different logical dates run at the same time in separate processes: both
exports are complete and ``_latest.json`` ends on the newer date, never on a half-written one."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest

from recsys_lib.storage import layout
from tests.integration.conftest import shop_in_store

pytestmark = [pytest.mark.faults, pytest.mark.integration]

DATASET = "concurrent-shop"
DAY0, DAY1, DAY2 = "2026-09-01", "2026-09-02", "2026-09-03"
PARAMS = {"dataset": DATASET, "model": "popularity", "k": 5, "export_shards": 2}
_RETRAIN = "from recsys_lib.pipelines.runner import retrain; retrain({params!r}, {ds!r})"


def _complete(store, ds: str) -> dict:
    """The manifest of ``ds``, after checking every file it lists is there with its size."""
    from recsys_lib.export import read_manifest

    manifest = read_manifest(store, DATASET, ds)
    for entry in manifest["files"]:
        assert store.head(layout.export_prefix("user_topk", DATASET, ds) + entry["name"]).size == entry["size"]
    return manifest


def test_two_dates_retrained_at_once_leave_a_consistent_latest_pointer(local_stack) -> None:
    from recsys_lib.export import read_manifest, read_recommendations
    from recsys_lib.pipelines.runner import retrain

    store = shop_in_store(
        local_stack.bucket, DATASET, end=datetime(2026, 9, 3, tzinfo=UTC), n_users=120, n_items=60, days=20, seed=6
    )
    retrain(PARAMS, DAY0)  # registers the model once, so the racing runs only add versions
    runs = [
        subprocess.Popen([sys.executable, "-c", _RETRAIN.format(params=PARAMS, ds=ds)], stderr=subprocess.PIPE)
        for ds in (DAY2, DAY1)  # the newer date starts first: the older one must not take the pointer back
    ]
    for run in runs:
        _, err = run.communicate(timeout=600)
        assert run.returncode == 0, err.decode()[-3000:]

    assert store.get_json(layout.latest_pointer_key("user_topk", DATASET))["dt"] == DAY2
    latest = read_manifest(store, DATASET)
    assert latest == _complete(store, DAY2)
    assert _complete(store, DAY1)["dt"] == DAY1  # the older export is published at its own date
    assert len(read_recommendations(store, DATASET)) == latest["rows"]

    retrain(PARAMS, DAY1)  # re-running the older date later is idempotent and still leaves the pointer alone
    assert store.get_json(layout.latest_pointer_key("user_topk", DATASET))["dt"] == DAY2
