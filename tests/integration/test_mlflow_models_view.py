"""What a data scientist sees of a retrain in MLflow 3, asked of the real tracking server: the model
in the Models view (``search_logged_models``) with its test and baseline metrics, a run that says
who ran it, from where and at which commit, and a registered version that names its data."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from recsys_lib.pipelines.context import git_commit
from tests.integration.conftest import shop_in_store

pytestmark = pytest.mark.integration

DATASET = "models-view-shop"
DS = "2026-09-15"
PARAMS = {"dataset": DATASET, "model": "item_knn", "k": 5, "export_shards": 1}


@pytest.fixture(scope="module")
def retrained(local_stack) -> dict:
    from recsys_lib.pipelines.runner import retrain

    shop_in_store(local_stack.bucket, DATASET, end=datetime(2026, 9, 16, tzinfo=UTC), n_users=80, n_items=40, days=15)
    return retrain(PARAMS, DS)


def test_the_logged_model_carries_its_test_and_baseline_metrics(retrained) -> None:
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient()
    run = client.get_run(retrained["train"]["run_id"])
    found = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string="metrics.test_ndcg_at_10 >= 0",
        output_format="list",
    )
    [model] = [m for m in found if m.source_run_id == run.info.run_id]
    metrics = {m.key: m.value for m in model.metrics or []}
    for name in ("ndcg", "recall", "hr", "mrr", "coverage"):
        assert metrics[f"test_{name}_at_10"] == pytest.approx(run.data.metrics[f"test_{name}_at_10"])
        assert f"baseline_test_{name}_at_10" in metrics
    assert 0 <= metrics["test_tail_share_at_10"] <= 1
    assert not [k for k in metrics if k.startswith(("champion_", "train_"))]  # the new model's own, not others'
    assert model.tags["recsys.dataset"] == DATASET and model.tags["recsys.logical_date"] == DS
    [version] = client.search_model_versions(f"run_id='{run.info.run_id}'")
    assert version.source == f"models:/{model.model_id}"  # the version was registered from this model


def test_the_run_says_who_ran_it_from_where_and_at_which_commit(retrained) -> None:
    import getpass

    from mlflow import MlflowClient

    tags = MlflowClient().get_run(retrained["train"]["run_id"]).data.tags
    assert tags["mlflow.user"] == getpass.getuser()
    assert tags["mlflow.source.name"] == "recsys_lib.pipelines.train"
    assert tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.source.git.commit"] == git_commit() == tags["recsys.git_commit"]
    assert len(tags["mlflow.source.git.commit"]) == 40


def test_the_registered_version_names_its_dataset_date_and_snapshot(retrained) -> None:
    from mlflow import MlflowClient

    registered = retrained["evaluate_and_register"]
    version = MlflowClient().get_model_version(registered["model_name"], registered["version"])
    snapshot_uri = MlflowClient().get_run(retrained["train"]["run_id"]).data.tags["recsys.snapshot_uri"]
    assert version.tags["recsys.dataset"] == DATASET
    assert version.tags["recsys.logical_date"] == DS
    assert version.tags["recsys.snapshot_uri"] == snapshot_uri
    assert snapshot_uri.startswith("s3://") and snapshot_uri.endswith(f"dataset={DATASET}/dt={DS}/")


def test_the_demo_reads_the_champions_metrics_from_its_logged_model(retrained) -> None:
    import mlflow

    from recsys_lib.registry import lookup
    from recsys_lib.registry import mlflow_registry as registry

    champion = registry.version_by_alias(f"recsys-{DATASET}", "champion")
    assert champion is not None
    experiment_id = mlflow.MlflowClient().get_run(str(champion.run_id)).info.experiment_id
    found = mlflow.search_logged_models(experiment_ids=[experiment_id], output_format="list")
    [model] = [m for m in found if m.source_run_id == champion.run_id]
    assert champion.model_id == model.model_id
    metrics = lookup.version_metrics(champion)
    assert metrics["test_ndcg_at_10"] >= 0 and "baseline_test_ndcg_at_10" in metrics
    assert all(k.startswith(("test_", "baseline_test_")) for k in metrics)  # the model's, not the run's
