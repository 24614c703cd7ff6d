"""Every model can be chosen by the DAG param ``model``: each run trains, registers and exports it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from recsys_lib import schema
from recsys_lib.export.reader import read_recommendations
from recsys_lib.storage import ObjectStore
from tests.integration.conftest import shop_in_store

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

DATASET = "e2e-models"
#: mf_bpr is covered by test_retrain_dag; each other model gets its own, later logical date.
MODELS = ["popularity", "item_knn", "gru4rec", "sasrec", "two_tower", "als"]


def _shop_until(bucket: str, day: int) -> ObjectStore:
    """The same shop, its feed ending at the start of ``day`` (fresh for that day's run)."""
    end = datetime(2026, 10, day, tzinfo=UTC)
    return shop_in_store(bucket, DATASET, end=end, n_users=200, n_items=100, n_categories=5, days=30, seed=3)


@pytest.mark.parametrize("model", MODELS)
def test_the_model_param_trains_registers_and_exports_that_model(retrain_dag, local_stack, model) -> None:
    from airflow.utils.state import DagRunState
    from mlflow import MlflowClient

    day = 2 + MODELS.index(model)
    store = _shop_until(local_stack.bucket, day)
    conf = {"dataset": DATASET, "model": model, "epochs": 3, "embedding_dim": 16, "k": 5, "force_promote": True}
    run = retrain_dag.test(logical_date=datetime(2026, 10, day, tzinfo=UTC), run_conf=conf)
    failed = [ti.task_id for ti in run.get_task_instances() if ti.state != "success"]
    assert run.state == DagRunState.SUCCESS, f"failed tasks: {failed}"

    client = MlflowClient()
    champion = client.get_model_version_by_alias(f"recsys-{DATASET}", "champion")
    assert client.get_run(champion.run_id).data.tags["recsys.model"] == model
    export = read_recommendations(store, DATASET, f"2026-10-{day:02d}")
    assert set(export[schema.MODEL_VERSION]) == {champion.version}
    assert export.groupby(schema.USER_ID).size().max() == 5
