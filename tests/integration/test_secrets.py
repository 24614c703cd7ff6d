"""Credentials stay out of everything the platform writes: a DAG run with known secrets for S3,
MLflow and the pseudonymisation key, then every log line, log file, stored object, MLflow param,
tag and artifact is searched for them (also base64-encoded, as in an HTTP basic-auth header)."""

from __future__ import annotations

import base64
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recsys_lib.storage import ObjectStore
from tests.integration.conftest import shop_in_store

pytestmark = [pytest.mark.security, pytest.mark.integration]

DATASET = "secret-shop"
DAY = datetime(2026, 9, 15, tzinfo=UTC)
SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "s3-secret-Zq8vN2kLx4",
    "MLFLOW_TRACKING_PASSWORD": "mlflow-secret-Hw3pR7tY1",
    "pseudonym": "pseudonym-secret-Bm5cJ9sD6",
}


def _needles() -> list[bytes]:
    basic_auth = base64.b64encode(b"recsys:" + SECRETS["MLFLOW_TRACKING_PASSWORD"].encode())
    return [*(v.encode() for v in SECRETS.values()), basic_auth]


def _leaks(where: str, data: bytes) -> list[str]:
    return [f"{where} holds {needle[:12]!r}..." for needle in _needles() if needle in data]


def test_no_secret_reaches_a_log_an_object_or_an_mlflow_run(
    retrain_dag, local_stack, monkeypatch, caplog, capfd
) -> None:
    from airflow.utils.state import DagRunState
    from mlflow import MlflowClient

    from recsys_lib.devstack.services import MLFLOW_ARTIFACT_BUCKET

    shop_in_store(local_stack.bucket, DATASET, end=DAY, n_users=100, n_items=50, n_categories=4, days=20, seed=12)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRETS["AWS_SECRET_ACCESS_KEY"])  # moto takes any key
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "recsys")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", SECRETS["MLFLOW_TRACKING_PASSWORD"])
    monkeypatch.setenv(
        "AIRFLOW_CONN_RECSYS_PSEUDONYM", json.dumps({"conn_type": "generic", "password": SECRETS["pseudonym"]})
    )
    caplog.set_level(logging.INFO)
    conf = {"dataset": DATASET, "epochs": 2, "embedding_dim": 8, "k": 5, "pseudonymize": True, "export_shards": 2}
    run = retrain_dag.test(logical_date=DAY, run_conf=conf)
    assert run.state == DagRunState.SUCCESS, [ti.task_id for ti in run.get_task_instances() if ti.state != "success"]

    leaks = _leaks("captured log records", caplog.text.encode())
    out, err = capfd.readouterr()
    leaks += _leaks("stdout/stderr", (out + err).encode())
    for root in (Path(os.environ["AIRFLOW_HOME"]), Path(local_stack.state_dir)):
        for path in (p for p in root.rglob("*") if p.is_file() and p.suffix in (".log", ".json", ".cfg", "")):
            leaks += _leaks(str(path), path.read_bytes())
    for bucket in (local_stack.bucket, MLFLOW_ARTIFACT_BUCKET):
        store = ObjectStore(bucket)
        objects = store.list_objects("")
        assert objects, bucket
        for obj in objects:
            leaks += _leaks(f"s3://{bucket}/{obj.key}", store.get_bytes(obj.key))
    client = MlflowClient()
    experiment = client.get_experiment_by_name(f"recsys-{DATASET}")
    for mlflow_run in client.search_runs([experiment.experiment_id]):
        data = mlflow_run.data
        text = json.dumps({"params": data.params, "tags": data.tags, "metrics": sorted(data.metrics)})
        leaks += _leaks(f"MLflow run {mlflow_run.info.run_id}", text.encode())
    assert not leaks, leaks
