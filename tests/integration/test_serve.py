"""`recsys serve` as a real process on a DAG-trained champion (real MLflow server, S3 over HTTP):
it answers exactly what the batch export published, re-ranks by the same scores, and picks up a
new champion when the alias moves."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pytest

from recsys_lib import schema
from recsys_lib.export.reader import read_recommendations
from tests.integration.conftest import running_service, shop_in_store

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

DATASET = "e2e-serve"
SHOP = {"n_users": 200, "n_items": 100, "n_categories": 5, "days": 30, "seed": 5}


def _retrain(retrain_dag, bucket: str, day: int, **conf) -> None:
    from airflow.utils.state import DagRunState

    shop_in_store(bucket, DATASET, end=datetime(2026, 10, day, tzinfo=UTC), **SHOP)
    params = {
        "dataset": DATASET,
        "model": "mf_bpr",
        "epochs": 3,
        "embedding_dim": 16,
        "k": 5,
        "force_promote": True,
        **conf,
    }
    run = retrain_dag.test(logical_date=datetime(2026, 10, day, tzinfo=UTC), run_conf=params)
    failed = [ti.task_id for ti in run.get_task_instances() if ti.state != "success"]
    assert run.state == DagRunState.SUCCESS, f"failed tasks: {failed}"


@pytest.fixture(scope="module")
def trained(retrain_dag, local_stack) -> str:
    """MF-BPR trained, registered as champion and exported for 2026-10-20."""
    _retrain(retrain_dag, local_stack.bucket, 20)
    return "2026-10-20"


@pytest.fixture(scope="module")
def service(trained, tmp_path_factory) -> Iterator[httpx.Client]:
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with running_service(DATASET, log, "--set", "serve.poll_seconds=1") as client:
        yield client


def test_requests_without_a_session_get_exactly_the_published_rows(service, local_stack, trained) -> None:
    from mlflow import MlflowClient

    champion = MlflowClient().get_model_version_by_alias(f"recsys-{DATASET}", "champion")
    health = service.get("/healthz").json()
    assert health["status"] == "ok" and health["model_version"] == champion.version
    assert health["model"] == "mf_bpr" and health["features_dt"] == trained
    assert health["user_vectors"] == f"user_embeddings of {trained}"

    from recsys_lib.storage import ObjectStore

    export = read_recommendations(ObjectStore(local_stack.bucket), DATASET, trained)
    assert set(export[schema.MODEL_VERSION]) == {champion.version}
    for user, rows in export.groupby(schema.USER_ID):
        rows = rows.sort_values(schema.RANK)
        got = service.post("/recommend", json={"user_id": user, "k": len(rows)})  # the run exported k = 5
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["model_version"] == champion.version and body["source"] == "model"
        assert [i["item_id"] for i in body["items"]] == rows[schema.ITEM_ID].tolist(), user
        scores = np.array([i["score"] for i in body["items"]], dtype=np.float32)
        np.testing.assert_array_equal(scores, rows[schema.SCORE].to_numpy(np.float32))

        if user.endswith("7"):  # a search engine's list: the export's items reversed, plus a new one
            candidates = ["not-in-the-catalogue", *reversed(rows[schema.ITEM_ID].tolist())]
            reranked = service.post("/rerank", json={"user_id": user, "candidates": candidates}).json()
            assert [i["item_id"] for i in reranked["items"]] == [*rows[schema.ITEM_ID], "not-in-the-catalogue"]


def test_the_registered_model_serves_through_mlflow_models_serve(local_stack, trained, tmp_path) -> None:
    """The peer a data scientist reaches for: `mlflow models serve` on the registered champion, as
    a real process. The model carries its code (code_paths) and pinned requirements."""
    from recsys_lib.registry.mlflow_registry import load_bundle
    from recsys_lib.storage import ObjectStore

    export = read_recommendations(ObjectStore(local_stack.bucket), DATASET, trained)
    user = str(export[schema.USER_ID].iloc[0])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mlflow = Path(sys.executable).parent / "mlflow"
    command = [str(mlflow), "models", "serve", "-m", f"models:/recsys-{DATASET}@champion", "--env-manager", "local"]
    command += ["--host", "127.0.0.1", "-p", str(port)]
    log = tmp_path / "mlflow-serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, env=dict(os.environ), stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        payload = {"dataframe_split": {"columns": [schema.USER_ID], "data": [[user]]}, "params": {"k": 5}}
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, f"mlflow models serve exited: {log.read_text()[-3000:]}"
            try:
                answer = httpx.post(f"http://127.0.0.1:{port}/invocations", json=payload, timeout=30)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, f"mlflow models serve never answered: {log.read_text()[-3000:]}"
                time.sleep(0.5)
        assert answer.status_code == 200, answer.text
        predictions = answer.json()["predictions"]
        # the pyfunc answers from the bundle alone (its training history, no catalogue to say what
        # is unavailable): what ModelBundle.recommend_ids gives in this process
        expected = load_bundle(f"models:/recsys-{DATASET}@champion").recommend_ids([user], 5)
        assert [p[schema.ITEM_ID] for p in predictions] == expected[schema.ITEM_ID].tolist()
        assert [p[schema.SCORE] for p in predictions] == expected[schema.SCORE].astype(float).tolist()
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_new_visitor_with_a_session_and_a_new_champion(service, retrain_dag, local_stack, trained) -> None:
    from recsys_lib.storage import ObjectStore

    viewed = read_recommendations(ObjectStore(local_stack.bucket), DATASET, trained)[schema.ITEM_ID].unique()[:2]
    viewed = [str(i) for i in viewed]
    session = service.post("/recommend", json={"recent_items": viewed, "k": 4}).json()
    assert session["source"] == "session" and len(session["items"]) == 4 and session["ignored_items"] == []
    assert not set(viewed) & {i["item_id"] for i in session["items"]}
    before = service.get("/healthz").json()["model_version"]

    _retrain(retrain_dag, local_stack.bucket, 21, model="sasrec")  # moves the alias; the service polls every 1 s
    deadline = time.monotonic() + 60  # the alias moves at register, the export is published after it
    while (health := service.get("/healthz").json())["features_dt"] != "2026-10-21":
        assert time.monotonic() < deadline, f"the service still serves {health}"
        time.sleep(0.5)
    assert health["model_version"] != before
    assert health["status"] == "ok" and health["model"] == "sasrec" and health["features_dt"] == "2026-10-21"
    got = service.post("/recommend", json={"user_id": "nobody-yet", "recent_items": viewed}).json()
    assert got["source"] == "session" and got["model_version"] == health["model_version"]

    # a sequence model's sessionless answers are its export's rows, score bits included: the service
    # scores known users with the vectors the export published (its encoder rounds per batch)
    assert health["user_vectors"] == "user_embeddings of 2026-10-21"
    export = read_recommendations(ObjectStore(local_stack.bucket), DATASET, "2026-10-21")
    assert set(export[schema.MODEL_VERSION]) == {health["model_version"]}
    for user, rows in export.groupby(schema.USER_ID):
        rows = rows.sort_values(schema.RANK)
        body = service.post("/recommend", json={"user_id": user, "k": len(rows)}).json()
        assert [i["item_id"] for i in body["items"]] == rows[schema.ITEM_ID].tolist(), user
        scores = np.array([i["score"] for i in body["items"]], dtype=np.float32)
        np.testing.assert_array_equal(scores, rows[schema.SCORE].to_numpy(np.float32))
    metrics = service.get("/metrics").text
    assert 'recsys_requests_total{endpoint="/recommend",status="200"}' in metrics
