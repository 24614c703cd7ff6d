"""A flaky object store loses nothing: the whole pipeline through a fault-injecting proxy in front
of the real moto server publishes exactly what a clean run publishes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.faults.proxy import FaultProxy
from tests.faults.published import published_topk
from tests.integration.conftest import shop_in_store

pytestmark = [pytest.mark.faults, pytest.mark.integration]

DS = "2026-08-01"
SHOP = {
    "end": datetime(2026, 8, 1, tzinfo=UTC),
    "n_users": 150,
    "n_items": 80,
    "n_categories": 4,
    "days": 20,
    "seed": 5,
}
PARAMS = {"epochs": 3, "embedding_dim": 8, "k": 5, "export_shards": 2}


def test_500s_503s_dropped_connections_and_timeouts_are_retried_to_the_same_export(local_stack, monkeypatch) -> None:
    from recsys_lib.export import read_manifest
    from recsys_lib.pipelines.runner import retrain

    store = shop_in_store(local_stack.bucket, "clean-shop", **SHOP)
    shop_in_store(local_stack.bucket, "flaky-shop", **SHOP)
    retrain({**PARAMS, "dataset": "clean-shop"}, DS)
    clean = published_topk(store, "clean-shop")

    with FaultProxy(local_stack.s3.url, every=6, faults=("500", "503", "drop", "slow"), hold_seconds=2.5) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
        monkeypatch.setenv("RECSYS_S3_READ_TIMEOUT", "1")
        retrain({**PARAMS, "dataset": "flaky-shop"}, DS)
    monkeypatch.undo()

    assert all(proxy.injected[f] >= 2 for f in ("500", "503", "drop", "slow")), proxy.injected
    flaky, manifest = published_topk(store, "flaky-shop"), read_manifest(store, "flaky-shop")
    assert manifest["rows"] == len(clean)
    assert flaky.equals(clean)  # the same users, ranks, items and scores, to the bit
    staging = [o.key for o in store.list_objects("exports/") if "/_staging/" in o.key and "flaky-shop" in o.key]
    assert staging == []
