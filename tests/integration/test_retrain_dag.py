"""The recsys_retrain DAG end to end: Airflow dag.test() against real moto S3 and MLflow servers."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from recsys_lib import schema
from recsys_lib.storage import ObjectStore, layout
from tests.integration.conftest import shop_in_store

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

DATASET = "e2e-shop"
LOGICAL_DATE = datetime(2026, 11, 1, tzinfo=UTC)
DS = "2026-11-01"
K = 7
SHARDS = 3
CONF = {"dataset": DATASET, "model": "mf_bpr", "epochs": 8, "k": K, "embedding_dim": 32, "export_shards": SHARDS}


@pytest.fixture(scope="module")
def store(local_stack) -> ObjectStore:
    return shop_in_store(
        local_stack.bucket, DATASET, end=LOGICAL_DATE, n_users=300, n_items=150, n_categories=6, days=40, seed=7
    )


@pytest.fixture(scope="module")
def first_run(retrain_dag, store):
    from airflow.utils.state import DagRunState

    run = retrain_dag.test(logical_date=LOGICAL_DATE, run_conf=CONF)
    failed = [ti.task_id for ti in run.get_task_instances() if ti.state != "success"]
    assert run.state == DagRunState.SUCCESS, f"failed tasks: {failed}"
    return run


def _seen_pairs(store: ObjectStore) -> set[tuple[str, str]]:
    events = store.get_frame(layout.snapshot_key(DATASET, DS, "events"))
    return set(zip(events[schema.USER_ID], events[schema.ITEM_ID], strict=True))


def test_validation_report_is_stored(first_run, store) -> None:
    report = store.get_json(layout.validation_report_key(DATASET, DS))
    assert report["success"] is True
    assert report["row_counts"]["events"] > 1000


def test_the_data_docs_are_in_s3_and_on_the_training_run(first_run, store) -> None:
    from mlflow import MlflowClient

    index = store.get_bytes(layout.data_docs_prefix(DATASET, DS) + "index.html")
    assert b"events_dataset" in index and b"<html" in index.lower()
    client = MlflowClient()
    champion = client.get_model_version_by_alias(f"recsys-{DATASET}", "champion")
    attached = {a.path for a in client.list_artifacts(champion.run_id, "validation")}
    assert {"validation/report.json", "validation/data_docs"} <= attached
    assert "validation/data_docs/index.html" in {
        a.path for a in client.list_artifacts(champion.run_id, "validation/data_docs")
    }


def test_first_model_is_registered_as_champion_with_metrics(first_run) -> None:
    from mlflow import MlflowClient

    client = MlflowClient()
    champion = client.get_model_version_by_alias(f"recsys-{DATASET}", "champion")
    run = client.get_run(champion.run_id)
    assert run.data.metrics["test_ndcg_at_10"] > 0
    assert "baseline_test_ndcg_at_10" in run.data.metrics
    assert run.data.params["model.name"] == "mf_bpr"
    assert run.data.tags["recsys.logical_date"] == DS
    assert run.data.tags["airflow.dag_run_id"] == first_run.run_id  # the MLflow run names its Airflow run
    history = client.get_metric_history(champion.run_id, "train_loss")
    assert len(history) == CONF["epochs"]


def test_export_is_published_readable_and_excludes_seen_items(first_run, store) -> None:
    from recsys_lib.export import read_manifest, read_recommendations

    recs = read_recommendations(store, DATASET)
    manifest = read_manifest(store, DATASET)
    events = store.get_frame(layout.snapshot_key(DATASET, DS, "events"))
    assert manifest["dt"] == DS and manifest["rows"] == len(recs)
    assert set(recs[schema.USER_ID]) == set(events[schema.USER_ID])
    assert (recs.groupby(schema.USER_ID).size() == K).all()
    assert not set(zip(recs[schema.USER_ID], recs[schema.ITEM_ID], strict=True)) & _seen_pairs(store)
    assert list(recs.columns) == list(schema.EXPORT_DTYPES)
    assert store.exists(layout.export_prefix("user_topk", DATASET, DS) + "_SUCCESS")
    for table in layout.EXPORT_TABLES:
        assert not store.list_objects(f"exports/{table}/dataset={DATASET}/_staging/"), table


def test_users_are_exported_by_one_mapped_task_per_shard(first_run, store) -> None:
    from recsys_lib.export import read_manifest

    shards = sorted(ti.map_index for ti in first_run.get_task_instances() if ti.task_id == "export_shard")
    assert shards == list(range(SHARDS))
    manifest = read_manifest(store, DATASET)
    assert {f["name"].split("-")[1] for f in manifest["files"]} == {f"{s:05d}" for s in range(SHARDS)}


def test_similar_items_are_published_next_to_the_user_lists(first_run, store) -> None:
    from recsys_lib.export import read_manifest, read_recommendations

    similar = read_recommendations(store, DATASET, table="similar_items")
    assert list(similar.columns) == list(schema.SIMILAR_ITEMS_DTYPES)
    assert len(similar) and (similar[schema.ITEM_ID] != similar[schema.SIMILAR_ITEM_ID]).all()
    assert similar.groupby(schema.ITEM_ID).size().max() <= 10
    assert read_manifest(store, DATASET, table="similar_items")["model"] == read_manifest(store, DATASET)["model"]


def test_the_cli_reads_similar_items_from_the_export(first_run, store, capsys) -> None:
    from recsys_lib.cli import main
    from recsys_lib.export import read_recommendations

    item = str(read_recommendations(store, DATASET, table="similar_items")[schema.ITEM_ID].iloc[0])
    assert main(["similar", "--item", item, "--dataset", DATASET]) == 0
    assert schema.SIMILAR_ITEM_ID in capsys.readouterr().out
    assert main(["similar", "--item", "no-such-item", "--dataset", DATASET]) == 1
    assert "has no similar items" in capsys.readouterr().err


def test_shopper_profiles_are_published_one_row_per_user_of_the_snapshot(first_run, store) -> None:
    from recsys_lib.export import read_manifest, read_recommendations

    profiles = read_recommendations(store, DATASET, table="user_profiles")
    manifest = read_manifest(store, DATASET, table="user_profiles")
    events = store.get_frame(layout.snapshot_key(DATASET, DS, "events"))
    assert manifest["dt"] == DS and manifest["columns"] == schema.USER_PROFILES_DTYPES
    assert manifest["pseudonymized"] is False and manifest["rows"] == len(profiles)
    assert list(profiles.columns) == list(schema.USER_PROFILES_DTYPES)
    assert profiles[schema.USER_ID].is_unique and set(profiles[schema.USER_ID]) == set(events[schema.USER_ID])
    buyers = set(events.loc[events[schema.EVENT_TYPE] == schema.PURCHASE, schema.USER_ID])
    assert set(profiles.loc[profiles[schema.FREQUENCY] > 0, schema.USER_ID]) == buyers
    assert set(profiles.loc[profiles[schema.RECENCY_DAYS].notna(), schema.USER_ID]) == buyers
    assert set(profiles[schema.RFM_SEGMENT]) <= set(schema.RFM_SEGMENTS) and "browsers" not in set(
        profiles.loc[profiles[schema.FREQUENCY] > 0, schema.RFM_SEGMENT]
    )
    assert set(profiles[schema.PRICE_BAND].dropna()) <= set(schema.PRICE_BANDS)
    shares = profiles[schema.CATEGORY_SHARES].map(lambda s: float(sum(s)))
    assert (profiles[schema.TOP_CATEGORIES].map(len) <= 3).all() and shares.between(0, 1 + 1e-6).all()
    assert profiles[schema.CHURN_RISK].dtype == bool


def test_user_and_item_vectors_are_published_for_an_online_reranker(first_run, store) -> None:
    import numpy as np

    from recsys_lib.export import read_manifest, read_recommendations

    items = read_recommendations(store, DATASET, table="item_embeddings")
    users = read_recommendations(store, DATASET, table="user_embeddings")
    topk = read_recommendations(store, DATASET)
    assert read_manifest(store, DATASET, table="user_embeddings")["model"] == read_manifest(store, DATASET)["model"]
    assert users[schema.USER_ID].is_unique and set(users[schema.USER_ID]) == set(topk[schema.USER_ID])
    assert items[schema.ITEM_ID].is_unique and set(topk[schema.ITEM_ID]) <= set(items[schema.ITEM_ID])
    vectors = np.stack(items[schema.EMBEDDING])
    assert vectors.shape == (len(items), CONF["embedding_dim"]) and np.isfinite(vectors).all()


@pytest.mark.faults
def test_rerun_of_the_same_date_replaces_the_export(first_run, retrain_dag, store) -> None:
    from airflow.utils.state import DagRunState

    from recsys_lib.export import read_manifest, read_recommendations

    before = read_recommendations(store, DATASET)
    first_manifest = read_manifest(store, DATASET)
    rerun = retrain_dag.test(logical_date=LOGICAL_DATE, run_conf=CONF)
    assert rerun.state == DagRunState.SUCCESS
    after = read_recommendations(store, DATASET)
    second_manifest = read_manifest(store, DATASET)
    assert second_manifest["attempt"] != first_manifest["attempt"]
    key = [schema.USER_ID, schema.RANK]
    pd.testing.assert_frame_equal(
        before.sort_values(key).reset_index(drop=True), after.sort_values(key).reset_index(drop=True)
    )
    parts = [
        o for o in store.list_objects(layout.export_prefix("user_topk", DATASET, DS)) if o.key.endswith(".parquet")
    ]
    assert len(parts) == len(second_manifest["files"])  # old attempt's parts are gone, not duplicated


def test_publish_emits_an_asset_event_a_downstream_dag_can_use(first_run, store) -> None:
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(select(AssetEvent).where(AssetEvent.source_run_id == first_run.run_id)).all()
        assert len(events) == 1
        event = events[0]
        extra, uri = dict(event.extra), event.asset.uri
    assert uri == f"s3://{store.bucket}/exports/user_topk"
    manifest = store.get_json(layout.export_prefix("user_topk", DATASET, DS) + "_manifest.json")
    assert extra["dataset"] == DATASET and extra["logical_date"] == DS
    assert extra["model_name"] == f"recsys-{DATASET}" and extra["model_version"] == manifest["model"]["version"]
    assert extra["rows"] == manifest["rows"] > 0
    assert extra["manifest_uri"] == store.uri(layout.export_prefix("user_topk", DATASET, DS) + "_manifest.json")
