"""Pseudonymised export through the DAG: the key comes from an Airflow connection, user ids never
reach the export, and a user's pseudonym is stable under the key."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest

from recsys_lib import schema
from recsys_lib.export.pseudonym import pseudonymize
from recsys_lib.storage import ObjectStore, layout
from tests.integration.conftest import shop_in_store

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

DATASET = "e2e-private"
DAY = datetime(2026, 9, 1, tzinfo=UTC)
KEY = "connection-held-secret-0123456789"


@pytest.fixture(scope="module")
def store(local_stack) -> ObjectStore:
    return shop_in_store(
        local_stack.bucket, DATASET, end=DAY, n_users=120, n_items=60, n_categories=4, days=20, seed=11
    )


def test_pseudonymised_export_takes_its_key_from_an_airflow_connection(retrain_dag, store, monkeypatch) -> None:
    from airflow.utils.state import DagRunState

    from recsys_lib.export import read_recommendations

    monkeypatch.delenv("RECSYS_PSEUDONYM_KEY", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_RECSYS_PSEUDONYM", json.dumps({"conn_type": "generic", "password": KEY}))
    conf = {"dataset": DATASET, "epochs": 2, "embedding_dim": 8, "k": 5, "pseudonymize": True, "export_shards": 2}
    run = retrain_dag.test(logical_date=DAY, run_conf=conf)
    assert run.state == DagRunState.SUCCESS, [ti.task_id for ti in run.get_task_instances() if ti.state != "success"]

    events = store.get_frame(layout.snapshot_key(DATASET, "2026-09-01", "events"))
    real_ids = set(events[schema.USER_ID])
    for table in ("user_topk", "user_embeddings", "user_profiles"):
        exported = set(read_recommendations(store, DATASET, table=table)[schema.USER_ID])
        assert not exported & real_ids, table
        assert exported == set(pseudonymize(np.array(sorted(real_ids)), KEY.encode())), table
    # the secret itself is nowhere in what was published
    for obj in store.list_objects(f"exports/user_topk/dataset={DATASET}/"):
        assert KEY.encode() not in store.get_bytes(obj.key), obj.key


def test_the_cli_finds_a_user_in_a_pseudonymised_export(store, monkeypatch, capsys) -> None:
    from recsys_lib.cli import main

    user = str(store.get_frame(layout.snapshot_key(DATASET, "2026-09-01", "events"))[schema.USER_ID].iloc[0])
    monkeypatch.setenv("RECSYS_PSEUDONYM_KEY", KEY)
    assert main(["recommend", "--user", user, "--dataset", DATASET, "--pseudonymized"]) == 0
    out = capsys.readouterr().out
    assert pseudonymize(np.array([user]), KEY.encode())[0] in out and user not in out
    assert main(["recommend", "--user", user, "--dataset", DATASET]) == 1  # the plain id is not there
    assert "is not in the published export" in capsys.readouterr().err
