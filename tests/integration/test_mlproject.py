"""`mlflow run mlflow/`: a data scientist's experiment outside Airflow trains, registers and
exports through the same pipeline, all of it logged into the run MLflow Projects opened."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime

import pytest

from recsys_lib.storage import ObjectStore
from tests.conftest import BIN, REPO
from tests.integration.conftest import shop_in_store

pytestmark = pytest.mark.integration

DATASET = "project-shop"
DS = "2026-10-15"


def test_mlflow_run_of_the_project_logs_the_retrain_into_its_run(local_stack) -> None:
    from mlflow import MlflowClient

    from recsys_lib.export import read_manifest

    shop_in_store(local_stack.bucket, DATASET, end=datetime(2026, 10, 16, tzinfo=UTC), n_users=80, n_items=40, days=15)
    experiment = f"recsys-{DATASET}"
    command = [
        str(BIN / "mlflow"), "run", str(REPO / "mlflow"), "--env-manager", "local", "--experiment-name", experiment,
        "-P", f"dataset={DATASET}", "-P", f"ds={DS}", "-P", "model=item_knn", "-P", "k=5",
    ]  # fmt: skip
    done = subprocess.run(command, env=dict(os.environ), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    client = MlflowClient()
    [run] = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert run.data.tags["mlflow.source.type"] == "PROJECT" and run.info.status == "FINISHED"
    assert run.data.params["model"] == "item_knn" and run.data.params["model.name"] == "item_knn"
    assert run.data.metrics["test_ndcg_at_10"] >= 0 and run.data.tags["recsys.logical_date"] == DS
    champion = client.get_model_version_by_alias(experiment, "champion")
    assert champion.run_id == run.info.run_id
    assert read_manifest(ObjectStore(local_stack.bucket), DATASET)["model"]["run_id"] == run.info.run_id
