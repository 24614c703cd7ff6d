"""The MLflow tracking server dies before registration: the task fails with one clear message,
no alias moves and the published export stays; once the server is back the retried task registers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from recsys_lib.errors import RegistryUnavailableError
from recsys_lib.storage import layout
from tests.integration.conftest import shop_in_store

pytestmark = [pytest.mark.faults, pytest.mark.integration]

DATASET = "mlflow-down-shop"
DAY1, DAY2 = "2026-08-01", "2026-08-02"
PARAMS = {"dataset": DATASET, "epochs": 2, "embedding_dim": 8, "k": 5, "export_shards": 1, "force_promote": True}


@pytest.fixture
def servers() -> Iterator[list]:
    """MLflow servers a test starts; whatever still runs is stopped at the end."""
    from recsys_lib.devstack.services import stop_pid

    started: list = []
    yield started
    for service in started:
        stop_pid(service.pid)


def test_mlflow_down_at_registration_fails_clearly_and_moves_no_alias(
    local_stack, tmp_path, monkeypatch, servers
) -> None:
    from mlflow import MlflowClient

    from recsys_lib.devstack.services import start_mlflow, stop_pid
    from recsys_lib.pipelines import features, ingest, register, train, validate
    from recsys_lib.pipelines.runner import retrain

    server = start_mlflow(tmp_path / "mlflow", local_stack.s3.url)  # its own server, so killing it hurts no one else
    servers.append(server)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail fast; Airflow's task retries wait instead
    store = shop_in_store(
        local_stack.bucket, DATASET, end=datetime(2026, 8, 2, tzinfo=UTC), n_users=100, n_items=50, days=20, seed=4
    )
    retrain(PARAMS, DAY1)
    pointer = store.get_bytes(layout.latest_pointer_key("user_topk", DATASET))

    snap = validate.run(PARAMS, DAY2, ingested_uri=ingest.run(PARAMS, DAY2)["ingested_uri"])
    feats = features.run(PARAMS, DAY2, snapshot_uri=snap["snapshot_uri"])
    trained = train.run(PARAMS, DAY2, features_uri=feats["features_uri"], snapshot_uri=snap["snapshot_uri"])
    registration = {
        "features_uri": feats["features_uri"],
        "run_id": trained["run_id"],
        "bundle_uri": trained["bundle_uri"],
    }

    stop_pid(server.pid)
    with pytest.raises(RegistryUnavailableError) as raised:
        register.run(PARAMS, DAY2, **registration)
    assert str(raised.value) == (
        f"MLflow tracking server {server.url} is unreachable while evaluating and registering the new model "
        "([Errno 111] Connection refused; registry.max_retries=0, registry.request_timeout=30 s); "
        "check MLFLOW_TRACKING_URI; no alias was changed, no version registered; retry once the server is back"
    )

    port = int(server.url.rsplit(":", 1)[1])
    servers.append(start_mlflow(tmp_path / "mlflow", local_stack.s3.url, port=port))  # same backend: nothing was lost
    client = MlflowClient()
    assert client.get_model_version_by_alias(f"recsys-{DATASET}", "champion").version == "1"
    assert len(client.search_model_versions(f"name='recsys-{DATASET}'")) == 1
    assert store.get_bytes(layout.latest_pointer_key("user_topk", DATASET)) == pointer

    retried = register.run(PARAMS, DAY2, **registration)  # what Airflow's task retry does
    assert (retried["version"], retried["alias"]) == ("2", "champion")
