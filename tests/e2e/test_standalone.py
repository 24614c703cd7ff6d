"""The real scheduler end to end: ``airflow standalone`` (LocalExecutor, SQLite) with the moto and
MLflow servers; ``recsys_retrain`` triggered through the REST API v2 with non-default params and
polled to success; then the Recommendations plugin page (with outcome reports put in the bucket, its
experiment charts) and the DAG's grid view opened in headless Chromium, checked, and saved as
screenshots (``$RECSYS_TEST_ARTIFACTS``, default ``.test-artifacts/``)."""

from __future__ import annotations

import json
import os
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from recsys_lib import schema
from tests.conftest import DAGS, REPO
from tests.e2e.browser import logged_in_page
from tests.integration.conftest import shop_in_store

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

DAG = "recsys_retrain"
DATASET = "standalone-shop"
#: Every value differs from the DAG's defaults (model als, k 10, 1 shard, 20 epochs, 64 dims).
CONF = {"dataset": DATASET, "model": "item_knn", "k": 7, "export_shards": 3, "epochs": 3, "embedding_dim": 16}
ARTIFACTS = Path(os.environ.get("RECSYS_TEST_ARTIFACTS") or REPO / ".test-artifacts")


class Api:
    """Airflow's REST API v2 with a bearer token."""

    def __init__(self, url: str, token: str):
        self.url, self.token = url, token

    def __call__(self, method: str, path: str, body: dict | None = None) -> Any:
        request = urllib.request.Request(
            f"{self.url}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)


@pytest.fixture(scope="module")
def airflow(local_stack, tmp_path_factory):
    from recsys_lib.devstack.services import airflow_token, start_airflow, stop_pid

    shop_in_store(
        local_stack.bucket, DATASET, end=datetime.now(UTC), n_users=150, n_items=80, n_categories=5, days=20, seed=21
    )
    home = tmp_path_factory.mktemp("standalone")
    env = {**local_stack.client_env(), "RECSYS_DATASET": DATASET}  # the plugin page opens on this dataset
    service = start_airflow(home, dags=DAGS, plugins=REPO / "plugins", env=env)
    try:
        yield service, Api(service.url, airflow_token(home, service.url))
    finally:
        stop_pid(service.pid)


@pytest.fixture(scope="module")
def finished_run(airflow) -> dict:
    service, api = airflow
    deadline = time.monotonic() + 120
    while True:  # the dag-processor parses dags/ a few seconds after start
        try:
            api("GET", f"/api/v2/dags/{DAG}")
            break
        except urllib.error.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)
    api("POST", "/api/v2/pools", {"name": "gpu", "slots": 1, "description": "GPU training slots"})
    api("PATCH", f"/api/v2/dags/{DAG}", {"is_paused": False})
    run = api("POST", f"/api/v2/dags/{DAG}/dagRuns", {"logical_date": None, "conf": CONF})
    run_path = f"/api/v2/dags/{DAG}/dagRuns/{urllib.parse.quote(run['dag_run_id'], safe='')}"
    deadline = time.monotonic() + 900
    while run["state"] not in ("success", "failed"):
        assert time.monotonic() < deadline, f"run still {run['state']} after 15 minutes"
        time.sleep(5)
        run = api("GET", run_path)
    tasks = api("GET", f"{run_path}/taskInstances")["task_instances"]
    not_ok = {t["task_id"]: t["state"] for t in tasks if t["state"] != "success"}
    assert run["state"] == "success", f"run {run['dag_run_id']} failed: {not_ok}; logs in {service.log}"
    return {"run": run, "tasks": tasks}


def test_the_triggered_run_used_the_non_default_params(finished_run, local_stack) -> None:
    from mlflow import MlflowClient

    from recsys_lib.export import read_manifest, read_recommendations
    from recsys_lib.storage import ObjectStore

    assert finished_run["run"]["conf"] == CONF
    shards = sorted(t["map_index"] for t in finished_run["tasks"] if t["task_id"] == "export_shard")
    assert shards == [0, 1, 2]
    client = MlflowClient()
    champion = client.get_model_version_by_alias(f"recsys-{DATASET}", "champion")
    assert client.get_run(champion.run_id).data.tags["recsys.model"] == "item_knn"
    store = ObjectStore(local_stack.bucket)
    manifest = read_manifest(store, DATASET)
    assert manifest["model"]["version"] == champion.version and manifest["model"]["run_id"] == champion.run_id
    recs = read_recommendations(store, DATASET)
    assert recs.groupby(schema.USER_ID).size().max() == CONF["k"]


def test_the_plugin_page_and_the_grid_view_show_the_run(airflow, finished_run) -> None:
    from mlflow import MlflowClient

    service, api = airflow
    champion = MlflowClient().get_model_version_by_alias(f"recsys-{DATASET}", "champion")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with logged_in_page(service.url, api.token) as page:
        page.goto(f"{service.url}/plugin/recommendations")
        frame = page.frame_locator("iframe").first
        frame.locator("text=Training runs").wait_for(timeout=60_000)
        text = frame.locator("body").inner_text()
        page.screenshot(path=str(ARTIFACTS / "plugin_recommendations.png"), full_page=True)
        assert f"dataset {DATASET}" in text
        assert f"champion: version {champion.version} · item_knn" in text
        assert "passed" in text and "Latest published export" in text
        assert champion.run_id not in text and "item_knn-" in text  # the leaderboard names the run

        page.goto(f"{service.url}/dags/{DAG}")
        page.locator("text=export_shard").first.wait_for(timeout=60_000)
        page.wait_for_load_state("networkidle")
        grid = page.locator("body").inner_text()
        page.screenshot(path=str(ARTIFACTS / "dag_grid.png"), full_page=True)
        for task in ("ingest_snapshot", "validate", "train", "evaluate_and_register", "export_shard", "publish"):
            assert task in grid, task
    assert (ARTIFACTS / "plugin_recommendations.png").stat().st_size > 10_000
    assert (ARTIFACTS / "dag_grid.png").stat().st_size > 10_000


def test_the_plugin_page_charts_the_experiment_outcomes(airflow, finished_run, local_stack) -> None:
    from recsys_lib.storage import ObjectStore
    from tests.integration.test_ui import put_outcome_reports

    service, api = airflow
    put_outcome_reports(ObjectStore(local_stack.bucket), DATASET)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with logged_in_page(service.url, api.token) as page:
        page.goto(f"{service.url}/plugin/recommendations")
        frame = page.frame_locator("iframe").first
        frame.locator("text=Experiment outcomes").wait_for(timeout=60_000)
        charts = frame.locator("svg.chart[aria-label*='by export date']")  # the two outcome charts
        charts.first.wait_for(timeout=30_000)
        text = frame.locator("body").inner_text()
        page.screenshot(path=str(ARTIFACTS / "plugin_outcomes.png"), full_page=True)
        assert charts.count() == 2 and all(charts.nth(i).is_visible() for i in range(2))
        assert all(charts.nth(i).bounding_box()["height"] > 100 for i in range(2))
        assert frame.locator("svg.chart").count() == 3  # and the shoppers' segments (export.profiles)
        assert "the challenger's arm does better on hit_rate" in text and "partial" in text
        assert "the 2026-01-10 export" in text and "p (Holm)" in text
    assert (ARTIFACTS / "plugin_outcomes.png").stat().st_size > 10_000
