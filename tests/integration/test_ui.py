"""The Recommendations page against the real local servers: what it shows after a retrain, that it
stays bounded with hundreds of runs, that it charts the experiment's outcome reports, that an
outage of MLflow or S3 degrades to a message, and that the Airflow plugin refuses anonymous
callers."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from recsys_lib.storage import ObjectStore, layout
from tests.integration.conftest import shop_in_store

pytestmark = pytest.mark.integration

DATASET = "ui-shop"
DS = "2026-10-20"
PARAMS = {"dataset": DATASET, "model": "item_knn", "k": 5, "export_shards": 1}


@pytest.fixture(scope="module")
def published(local_stack) -> ObjectStore:
    from recsys_lib.pipelines.runner import retrain

    store = shop_in_store(
        local_stack.bucket, DATASET, end=datetime(2026, 10, 21, tzinfo=UTC), n_users=80, n_items=40, days=15, seed=8
    )
    retrain(PARAMS, DS)
    return store


@pytest.fixture
def client(local_stack, monkeypatch):
    from fastapi.testclient import TestClient

    from recsys_lib.ui.app import create_app

    monkeypatch.setenv("RECSYS_BUCKET", local_stack.bucket)
    return TestClient(create_app())


def test_the_page_shows_the_champion_export_validation_and_leaderboard(published, client) -> None:
    from mlflow import MlflowClient

    champion = MlflowClient().get_model_version_by_alias(f"recsys-{DATASET}", "champion")
    page = client.get("/", params={"dataset": DATASET})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert f"<b>champion</b>: version {champion.version} &middot; item_knn &middot; {DS}" in html
    assert f"<tr><th>date</th><td>{DS}</td></tr>" in html
    assert f"{DS}: <span class='ok'>passed</span>" in html
    assert "/#/experiments/" in html and champion.run_id in html  # the leaderboard links the run in MLflow
    assert "class='champion'" in html

    data = client.get("/api/overview", params={"dataset": DATASET}).json()
    assert data["models"]["data"]["champion"]["version"] == champion.version
    assert data["export"]["data"]["dt"] == DS and data["export"]["data"]["rows"] > 0
    assert data["validation"]["data"]["success"] is True
    assert [r["run_id"] for r in data["runs"]["data"]] == [champion.run_id]

    manifest = client.get("manifest", params={"dataset": DATASET}).json()
    assert manifest["dt"] == DS and manifest["rows"] == data["export"]["data"]["rows"]
    docs = client.get(f"/data-docs/{DATASET}/{DS}/index.html")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert client.get(f"/data-docs/{DATASET}/{DS}/../../../secret").status_code in (400, 404)
    assert client.get("/", params={"dataset": "../etc"}).status_code == 400


def test_hundreds_of_runs_render_as_one_bounded_leaderboard(published, client) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    from recsys_lib.ui.app import MAX_RUNS

    mlflow = MlflowClient()
    experiment = mlflow.create_experiment("recsys-ui-many")
    for i in range(MAX_RUNS + 50):
        run = mlflow.create_run(experiment, run_name=f"run-{i}", tags={"recsys.model": "mf_bpr"})
        mlflow.log_batch(run.info.run_id, metrics=[Metric("test_ndcg_at_10", i / 1000, 0, 0)])
    data = client.get("/api/overview", params={"dataset": "ui-many"}).json()
    assert len(data["runs"]["data"]) == MAX_RUNS
    assert data["runs"]["data"][0]["name"] == f"run-{MAX_RUNS + 49}"  # newest first
    assert data["models"]["data"] == {} and "No registered model yet" in client.get("/?dataset=ui-many").text


def outcome_report(
    export_dt: str, hit_champion: float, hit_challenger: float, days_observed: int = 7, seed: int = 0
) -> dict:
    """A real report (``build_report``) of 1000 users per arm who all view their one listed item on
    2026-01-12 and buy it at the arm's rate, and a tenth of whom also buy an unlisted item (so the
    conversion rate is above the hit rate); ``export_dt`` from 2026-01-05 to 2026-01-11."""
    import pandas as pd

    from recsys_lib import schema
    from recsys_lib.config import OutcomesConfig
    from recsys_lib.outcomes.report import Window, build_report
    from tests.unit.outcomes.test_report import _experiment

    recs, events = _experiment(hit_champion, hit_challenger, seed=seed)
    views = events[events[schema.EVENT_TYPE] == schema.VIEW]
    unlisted = views.sample(frac=0.1, random_state=seed).assign(
        **{schema.ITEM_ID: "unlisted", schema.EVENT_TYPE: schema.PURCHASE}
    )
    events = pd.concat([events, unlisted], ignore_index=True)
    return build_report(recs, events, Window(export_dt, 7, days_observed), OutcomesConfig())


#: (export date, champion's and challenger's hit rate, days observed): the newest window is partial.
OUTCOME_REPORTS = [("2026-01-08", 0.20, 0.21, 7), ("2026-01-09", 0.20, 0.24, 7), ("2026-01-10", 0.20, 0.30, 3)]


def put_outcome_reports(store: ObjectStore, dataset: str) -> None:
    """Write :data:`OUTCOME_REPORTS` where ``recsys outcomes`` puts them (another draw each day)."""
    for dt, champion, challenger, observed in OUTCOME_REPORTS:
        report = outcome_report(dt, champion, challenger, observed, seed=int(dt[-2:]))
        store.put_json(layout.outcomes_report_key(dataset, dt), report)


def test_the_page_charts_the_outcome_reports_and_the_newest_verdict(client, local_stack) -> None:
    from recsys_lib.outcomes.report import BETTER

    dataset = "ui-outcomes"
    put_outcome_reports(ObjectStore(local_stack.bucket), dataset)
    page = client.get("/", params={"dataset": dataset})
    assert page.status_code == 200
    section = page.text.split("<h2>Experiment outcomes</h2>")[1].split("<h2>")[0]
    assert section.count("<svg") == 2 and section.count("<polyline") == 4  # two charts, two arms each
    assert "Hit rate by export date (95% intervals)" in section and "Conversion rate by export date" in section
    assert (
        "verdict: the challenger&#x27;s arm does better on hit_rate (3 of 7 days observed, partial: no promotion on it)"
        in section
    )
    assert "Newest report: the 2026-01-10 export, days 2026-01-11 to 2026-01-13" in section
    assert all(dt in section for dt, *_ in OUTCOME_REPORTS)  # on the x axis
    assert re.search(r"<title>champion · 2026-01-10: \d+\.\d\d% \[\d+\.\d\d%, \d+\.\d\d%\]", section)  # tooltip
    assert section.index(">champion<br>") < section.index(">challenger<br>") < section.index("p (Holm)")
    assert re.search(r"<td class='num'>\+\d+\.\d\d pp <span", section)  # the newest hit rate difference

    data = client.get("/api/overview", params={"dataset": dataset}).json()["outcomes"]
    assert data["error"] is None and data["data"]["dates"] == ["2026-01-10", "2026-01-09", "2026-01-08"]
    assert data["data"]["newest"]["report"]["verdict"] == BETTER
    hit_rate = data["data"]["series"]["hit_rate"]
    assert list(hit_rate) == ["champion", "challenger"]
    assert [p["value"] for p in hit_rate["challenger"]] == pytest.approx([0.21, 0.24, 0.30], abs=0.03)
    assert [p["partial"] for p in hit_rate["champion"]] == [False, False, True]


def test_a_dataset_without_outcome_reports_shows_how_to_make_one(client) -> None:
    page = client.get("/", params={"dataset": "ui-no-outcomes"})
    section = page.text.split("<h2>Experiment outcomes</h2>")[1].split("<h2>")[0]
    assert "No outcome report for this dataset yet" in section and "<code>recsys_outcomes</code> DAG" in section
    assert "<svg" not in section
    assert client.get("/api/overview", params={"dataset": "ui-no-outcomes"}).json()["outcomes"] == {
        "data": None,
        "error": None,
    }


def test_the_shoppers_section_charts_the_segment_sizes_of_the_published_profiles(published, client) -> None:
    from recsys_lib import schema

    page = client.get("/", params={"dataset": DATASET})
    section = page.text.split("<h2>Shoppers</h2>")[1].split("<h2>")[0]
    assert section.count("<svg") == 1 and "Shoppers per RFM segment, export of " + DS in section
    data = client.get("/api/overview", params={"dataset": DATASET}).json()["profiles"]
    users = published.get_frame(layout.snapshot_key(DATASET, DS, "events"))[schema.USER_ID].nunique()
    assert data["error"] is None and data["data"]["rows"] == users == sum(data["data"]["segments"].values())
    segments = list(data["data"]["segments"])
    assert segments == [s for s in schema.RFM_SEGMENTS if s in segments]  # in the rules' order
    for segment, count in data["data"]["segments"].items():
        assert f"<title>{segment}: {count:,} (" in section  # one bar each, with its count in the tooltip
    assert f"{users:,} shoppers &middot; {data['data']['churn_risk']:,} at churn risk" in section


def test_a_dataset_without_profiles_shows_a_hint(client) -> None:
    page = client.get("/", params={"dataset": "ui-no-profiles"})
    section = page.text.split("<h2>Shoppers</h2>")[1].split("<h2>")[0]
    assert "No shopper profiles for this dataset yet" in section and "<svg" not in section
    assert client.get("/api/overview", params={"dataset": "ui-no-profiles"}).json()["profiles"] == {
        "data": None,
        "error": None,
    }


def test_an_unreachable_mlflow_or_s3_is_a_message_not_an_error_page(published, client, monkeypatch) -> None:
    from recsys_lib.devstack.services import free_port

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    page = client.get("/", params={"dataset": DATASET})
    assert page.status_code == 200
    assert page.text.count("is unreachable (ConnectionError): models and runs cannot be shown") == 2
    assert f"<tr><th>date</th><td>{DS}</td></tr>" in page.text  # S3 still answers

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    page = client.get("/", params={"dataset": DATASET})
    assert page.status_code == 200
    unreadable = page.text.count(f"S3 at s3://{published.bucket}/ could not be read")
    assert unreadable == 4  # export, shoppers, validation, outcomes


def test_the_airflow_plugin_mounts_the_page_behind_airflow_login() -> None:
    from importlib.metadata import entry_points

    from fastapi.testclient import TestClient

    [entry] = entry_points(group="airflow.plugins", name="recsys_ui")  # where Airflow finds it
    plugin = entry.load()
    [app] = plugin.fastapi_apps
    assert app["url_prefix"] == "/recsys" and plugin.external_views[0]["href"] == "recsys/"
    anonymous = TestClient(app["app"]).get("/")
    assert anonymous.status_code == 401 and anonymous.json()["detail"] == "Not authenticated"
