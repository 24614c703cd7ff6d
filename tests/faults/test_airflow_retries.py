"""An object store down for longer than the client's own retries: the Airflow task fails, Airflow
retries it after its retry delay, and the run completes with the export a clean run publishes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.faults.proxy import FaultProxy
from tests.faults.published import published_topk
from tests.integration.conftest import shop_in_store

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.e2e]

DAY = datetime(2026, 8, 20, tzinfo=UTC)
SHOP = {"end": DAY, "n_users": 100, "n_items": 50, "n_categories": 4, "days": 20, "seed": 13}
CONF = {"epochs": 2, "embedding_dim": 8, "k": 5, "export_shards": 1}


def test_a_task_failed_by_an_outage_is_retried_by_airflow_to_the_clean_export(
    retrain_dag, local_stack, monkeypatch
) -> None:
    from airflow.utils.state import DagRunState

    from recsys_lib.pipelines.runner import retrain

    store = shop_in_store(local_stack.bucket, "steady-shop", **SHOP)
    shop_in_store(local_stack.bucket, "outage-shop", **SHOP)
    retrain({**CONF, "dataset": "steady-shop"}, DAY.date().isoformat(), interval_end=(DAY.replace(day=21)).isoformat())

    with FaultProxy(local_stack.s3.url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
        monkeypatch.setenv("RECSYS_S3_MAX_ATTEMPTS", "2")  # botocore gives up within the outage
        proxy.outage(20)  # down when ingest_snapshot starts; back long before its retry (1 minute later)
        run = retrain_dag.test(logical_date=DAY, run_conf={**CONF, "dataset": "outage-shop"})
    monkeypatch.undo()

    assert run.state == DagRunState.SUCCESS
    ingest = run.get_task_instance("ingest_snapshot")
    assert ingest.try_number == 2 and proxy.injected["outage"] >= 2  # failed once, retried by Airflow
    assert published_topk(store, "outage-shop").equals(published_topk(store, "steady-shop"))
