"""Business rules end to end: a DAG run with ``recommend.*`` settings (real MLflow, S3 over HTTP)
exports lists that obey them, and `recsys serve` with the same settings answers the same lists."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import pytest

from recsys_lib import schema
from recsys_lib.export.reader import read_recommendations
from recsys_lib.storage import ObjectStore, layout
from tests.integration.conftest import running_service, shop_in_store

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

DATASET = "e2e-rules"
DAY = datetime(2026, 10, 20, tzinfo=UTC)
SHOP = {"n_users": 200, "n_items": 120, "n_categories": 5, "days": 30, "seed": 8}


@pytest.fixture(scope="module")
def shop(local_stack) -> tuple[ObjectStore, pd.DataFrame, dict]:
    from recsys_lib.sources.synthetic import generate_shop

    store = shop_in_store(local_stack.bucket, DATASET, end=DAY, **SHOP)
    items = generate_shop(end=DAY, **SHOP)[1]
    categories = sorted(items[schema.CATEGORY].dropna().unique())
    rules = {
        "recommend.exclude_categories": [categories[0]],
        "recommend.max_per_category": 3,
        "recommend.pinned_items": [str(items[schema.ITEM_ID].iloc[-1])],
    }
    return store, items, rules


@pytest.fixture(scope="module")
def exported(retrain_dag, shop) -> pd.DataFrame:
    from airflow.utils.state import DagRunState

    store, _, rules = shop
    conf = {"dataset": DATASET, "epochs": 3, "embedding_dim": 16, "k": 10, **rules}
    run = retrain_dag.test(logical_date=DAY, run_conf=conf)
    assert run.state == DagRunState.SUCCESS, [ti.task_id for ti in run.get_task_instances() if ti.state != "success"]
    return read_recommendations(store, DATASET, "2026-10-20")


def test_the_export_obeys_the_rules(exported, shop) -> None:
    _, items, rules = shop
    category = exported[schema.ITEM_ID].map(items.set_index(schema.ITEM_ID)[schema.CATEGORY])
    assert not category.isin(rules["recommend.exclude_categories"]).any()
    [pinned] = rules["recommend.pinned_items"]
    firsts = exported[exported[schema.RANK] == 1][schema.ITEM_ID]
    assert (firsts == pinned).mean() > 0.9  # first everywhere but for the few users who have it already
    unpinned = exported[exported[schema.ITEM_ID] != pinned].assign(category=category)
    assert unpinned.groupby([schema.USER_ID, "category"]).size().max() <= 3
    assert exported.groupby(schema.USER_ID).size().min() == 10  # lists stay full


def test_the_live_service_with_the_same_settings_answers_the_same_lists(exported, shop, tmp_path) -> None:
    _, _, rules = shop
    settings = [arg for key, value in rules.items() for arg in ("--set", f"{key}={json.dumps(value)}")]
    with running_service(DATASET, tmp_path / "serve.log", *settings) as service:
        for user, rows in list(exported.groupby(schema.USER_ID))[:40]:
            got = service.post("/recommend", json={"user_id": user, "k": 10})
            assert got.status_code == 200, got.text
            listed = [i["item_id"] for i in got.json()["items"]]
            assert listed == rows.sort_values(schema.RANK)[schema.ITEM_ID].tolist(), user


def test_a_rule_naming_what_the_catalogue_lacks_stops_the_run_before_training(retrain_dag, shop) -> None:
    from airflow.utils.state import DagRunState, TaskInstanceState

    store, _, _ = shop
    key = layout.latest_pointer_key("user_topk", DATASET)
    pointer = store.get_bytes(key) if store.exists(key) else None
    conf = {"dataset": DATASET, "model": "popularity", "k": 10, "recommend.exclude_categories": ["no such aisle"]}
    run = retrain_dag.test(logical_date=datetime(2026, 10, 19, tzinfo=UTC), run_conf=conf)
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == DagRunState.FAILED and states["build_features"] == TaskInstanceState.FAILED, states
    assert states["train"] != TaskInstanceState.SUCCESS and states["publish"] != TaskInstanceState.SUCCESS
    assert (store.get_bytes(key) if store.exists(key) else None) == pointer  # nothing published


def test_separate_repeat_purchases_publish_a_buy_again_table_the_service_answers_too(
    retrain_dag, shop, tmp_path
) -> None:
    from airflow.utils.state import DagRunState

    store, _, _ = shop
    day = datetime(2026, 10, 21, tzinfo=UTC)
    conf = {"dataset": DATASET, "model": "item_knn", "k": 10, "recommend.repeat_purchases": "separate"}
    run = retrain_dag.test(logical_date=day, run_conf=conf)
    assert run.state == DagRunState.SUCCESS, [ti.task_id for ti in run.get_task_instances() if ti.state != "success"]
    events = store.get_frame(layout.snapshot_key(DATASET, "2026-10-21", "events"))
    bought = events[events[schema.EVENT_TYPE] == schema.PURCHASE]
    bought_pairs = set(zip(bought[schema.USER_ID], bought[schema.ITEM_ID], strict=True))
    again = read_recommendations(store, DATASET, "2026-10-21", table="buy_again")
    assert len(again) and set(zip(again[schema.USER_ID], again[schema.ITEM_ID], strict=True)) <= bought_pairs
    assert (again[schema.REASON_KIND] == schema.BUY_AGAIN).all() and again[schema.RANK].min() == 1
    assert again.groupby(schema.USER_ID)[schema.RANK].max().max() <= 10
    topk = read_recommendations(store, DATASET, "2026-10-21")
    assert not set(zip(topk[schema.USER_ID], topk[schema.ITEM_ID], strict=True)) & bought_pairs
    # `recsys serve` with the same policy answers GET /buy-again with the published rows
    with running_service(DATASET, tmp_path / "serve.log", "--set", 'recommend.repeat_purchases="separate"') as service:
        for user, rows in list(again.groupby(schema.USER_ID))[:30]:
            got = service.get(f"/buy-again/{user}", params={"k": 10})
            assert got.status_code == 200, got.text
            items = got.json()["items"]
            assert [i["item_id"] for i in items] == rows.sort_values(schema.RANK)[schema.ITEM_ID].tolist(), user
            assert [i["score"] for i in items] == pytest.approx(rows.sort_values(schema.RANK)[schema.SCORE].tolist())
