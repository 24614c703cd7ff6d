"""The outcome loop end to end (Airflow dag.test(), real MLflow server, S3 over HTTP): a strong
champion (item-kNN) and a weak challenger (popularity) exported as a 50/50 experiment, a simulated
week of shoppers who respond to their lists, and the recsys_outcomes DAG's report, whose verdict
must match the planted truth: the challenger's arm does worse."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from recsys_lib import schema
from recsys_lib.export.reader import read_manifest, read_recommendations
from recsys_lib.outcomes.arms import in_challenger_arm
from recsys_lib.storage import ObjectStore, layout
from tests.conftest import DAGS

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

DATASET = "e2e-outcomes"
EXPORT_DATE = datetime(2026, 10, 20, tzinfo=UTC)
DS = "2026-10-20"
SHOP = {"n_users": 600, "n_items": 150, "n_categories": 6, "days": 30, "seed": 11}
CONF = {"dataset": DATASET, "k": 10, "export_shards": 2}


def _assert_success(run) -> None:
    from airflow.utils.state import DagRunState

    failed = [ti.task_id for ti in run.get_task_instances() if ti.state != "success"]
    assert run.state == DagRunState.SUCCESS, f"failed tasks: {failed}"


@pytest.fixture(scope="module")
def store(local_stack) -> ObjectStore:
    from recsys_lib.sources import write_synthetic_shop

    store = ObjectStore(local_stack.bucket)
    write_synthetic_shop(store, DATASET, end=EXPORT_DATE, **SHOP)
    return store


@pytest.fixture(scope="module")
def experiment(retrain_dag, store) -> dict:
    """Item-kNN trained and made champion, then popularity trained (it does not beat the champion,
    so it gets the challenger alias) and the export published with half the users on it."""
    day_before = datetime(2026, 10, 19, tzinfo=UTC)
    _assert_success(retrain_dag.test(logical_date=day_before, run_conf={**CONF, "model": "item_knn"}))
    conf = {**CONF, "model": "popularity", "challenger_share": 0.5}
    _assert_success(retrain_dag.test(logical_date=EXPORT_DATE, run_conf=conf))
    return read_manifest(store, DATASET, DS)


@pytest.fixture(scope="module")
def week(experiment, store) -> dict:
    from recsys_lib.pipelines import simulate

    return simulate.run({"dataset": DATASET}, days=7, seed=3)


def test_the_export_splits_users_by_the_keyed_hash_and_names_each_rows_arm(experiment, store) -> None:
    arms = experiment["experiment"]["arms"]
    assert experiment["experiment"]["challenger_share"] == 0.5
    assert (arms["champion"]["version"], arms["challenger"]["version"]) == ("1", "2")
    assert read_manifest(store, DATASET)["experiment"] == experiment["experiment"]  # the latest one
    rows = read_recommendations(store, DATASET, DS)
    per_user = rows.drop_duplicates(schema.USER_ID)
    challenged = in_challenger_arm(per_user[schema.USER_ID].to_numpy(), experiment["experiment"]["name"], 0.5)
    assert (per_user[schema.ARM].to_numpy() == np.where(challenged, "challenger", "champion")).all()
    assert 0.4 < challenged.mean() < 0.6
    versions = rows.groupby(schema.ARM)[schema.MODEL_VERSION].unique()
    assert versions.to_dict() == {"champion": ["1"], "challenger": ["2"]}
    popular = rows[rows[schema.ARM] == "challenger"].groupby(schema.ITEM_ID)[schema.USER_ID].nunique()
    assert popular.max() > 0.5 * challenged.sum()  # popularity shows the same items to most of its arm


def test_the_outcomes_dag_report_matches_the_planted_truth(week, store, airflow_db) -> None:
    from airflow.dag_processing.dagbag import DagBag
    from mlflow import MlflowClient

    assert week["days"] == [f"2026-10-{d}" for d in range(21, 28)] and week["impressions"] > 0
    bag = DagBag(dag_folder=str(DAGS))
    dag = bag.get_dag("recsys_outcomes")
    _assert_success(dag.test(logical_date=datetime(2026, 10, 28, tzinfo=UTC), run_conf={"dataset": DATASET}))

    report = store.get_json(layout.outcomes_report_key(DATASET, DS))
    assert report["window"]["days_observed"] == 7 and report["partial"] is False
    champion, challenger = report["arms"]["champion"], report["arms"]["challenger"]
    assert champion["model"]["version"] == "1" and challenger["model"]["version"] == "2"
    assert champion["exposed"] > 200 and challenger["exposed"] > 200
    hit = report["comparison"]["metrics"]["hit_rate"]
    assert hit["value"] < 0 and hit["p_adjusted"] < 0.05
    assert report["verdict"] == "challenger_worse"
    assert champion["metrics"]["click_through_rate"]["value"] > challenger["metrics"]["click_through_rate"]["value"]
    assert report["unexposed"]["users"] > 0  # the simulated new visitors, counted apart

    client = MlflowClient()
    run = client.get_run(report["mlflow_run_id"])
    assert run.data.tags["recsys.verdict"] == "challenger_worse"
    assert run.data.metrics["diff.hit_rate"] == pytest.approx(hit["value"])
    assert run.data.metrics["champion.hit_rate"] == pytest.approx(champion["metrics"]["hit_rate"]["value"])
    for version in ("1", "2"):
        tags = client.get_model_version(f"recsys-{DATASET}", version).tags
        assert tags[f"outcomes.{DS}"] == report["mlflow_run_id"]


def test_a_report_before_the_window_ends_is_partial(week, store) -> None:
    from recsys_lib.pipelines import outcomes

    report, _ = outcomes.report({"dataset": DATASET}, "2026-10-23", export_dt=DS, log_to_mlflow=False)
    assert report["partial"] is True and report["window"]["days_observed"] == 3
    assert report["window"]["last_day_observed"] == "2026-10-23"


ONLINE = "e2e-online"


@pytest.fixture(scope="module")
def online_experiment(retrain_dag, local_stack) -> ObjectStore:
    """Popularity as the first champion; item-kNN, better offline, registered with promote_on=online
    (so it only becomes challenger) and exported to half the users; then a simulated week."""
    from recsys_lib.pipelines import simulate
    from recsys_lib.sources import write_synthetic_shop

    store = ObjectStore(local_stack.bucket)
    write_synthetic_shop(store, ONLINE, end=EXPORT_DATE, **SHOP)
    conf = {**CONF, "dataset": ONLINE}
    day_before = datetime(2026, 10, 19, tzinfo=UTC)
    _assert_success(retrain_dag.test(logical_date=day_before, run_conf={**conf, "model": "popularity"}))
    online = {**conf, "model": "item_knn", "promote_on": "online", "challenger_share": 0.5}
    _assert_success(retrain_dag.test(logical_date=EXPORT_DATE, run_conf=online))
    simulate.run({"dataset": ONLINE}, days=7, seed=4)
    return store


def test_online_promotion_moves_the_alias_only_on_significant_evidence(online_experiment, week, store) -> None:
    from mlflow import MlflowClient

    from recsys_lib.pipelines import outcomes

    client = MlflowClient()
    online = {"promote_on": "online", "outcomes.min_days": 1}
    # the weak challenger of the first experiment loses: its report keeps the champion
    report, _ = outcomes.report({"dataset": DATASET, **online}, "2026-10-27", export_dt=DS, log_to_mlflow=False)
    assert report["verdict"] == "challenger_worse" and report["promotion"]["promote"] is False
    assert client.get_model_version_by_alias(f"recsys-{DATASET}", "champion").version == "1"

    model = f"recsys-{ONLINE}"
    assert client.get_model_version_by_alias(model, "challenger").version == "2"  # better offline, not promoted
    partial, _ = outcomes.report({"dataset": ONLINE, **online}, "2026-10-24", export_dt=DS, log_to_mlflow=False)
    assert partial["partial"] and partial["verdict"] == "challenger_better"
    assert partial["promotion"]["promote"] is False  # a window still landing never promotes
    assert client.get_model_version_by_alias(model, "champion").version == "1"

    report, _ = outcomes.report({"dataset": ONLINE, **online}, "2026-10-27", export_dt=DS)
    assert report["verdict"] == "challenger_better" and not report["partial"]
    assert report["promotion"]["promote"] is True and report["promotion"]["evidence"] == [DS]
    assert client.get_model_version_by_alias(model, "champion").version == "2"
    assert {a for a in client.get_registered_model(model).aliases} == {"champion"}
    assert client.get_run(report["mlflow_run_id"]).data.tags["recsys.promotion"] == "promoted"
