"""Runs of different models can be compared side by side in MLflow: the tracking server is asked
what a data scientist would look for on each run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.integration.conftest import shop_in_store

pytestmark = pytest.mark.integration

DATASET = "compare-shop"
DS = "2026-10-10"
MODELS = {"mf_bpr": {"epochs": 3, "embedding_dim": 16}, "item_knn": {}}


@pytest.fixture(scope="module")
def runs(local_stack) -> dict:
    from mlflow import MlflowClient

    from recsys_lib.pipelines.runner import retrain

    shop_in_store(local_stack.bucket, DATASET, end=datetime(2026, 10, 11, tzinfo=UTC), n_users=100, n_items=50, days=20)
    out = {}
    for model, extra in MODELS.items():
        result = retrain({"dataset": DATASET, "model": model, "k": 5, "export_shards": 1, **extra}, DS)
        out[model] = MlflowClient().get_run(result["train"]["run_id"])
    return out


def test_every_run_carries_the_same_comparable_metrics_and_lineage(runs) -> None:
    for model, run in runs.items():
        metrics, tags = run.data.metrics, run.data.tags
        for k in (10, 20, 50):
            for name in ("ndcg", "recall", "hr", "mrr", "coverage"):
                assert f"test_{name}_at_{k}" in metrics, (model, name, k)
                assert f"baseline_test_{name}_at_{k}" in metrics
        assert 0 <= metrics["test_tail_share_at_10"] <= 1
        assert tags["recsys.model"] == model and tags["recsys.logical_date"] == DS
        assert tags["recsys.git_commit"] and tags["recsys.snapshot_uri"].endswith(f"dt={DS}/")
        assert run.data.params["model.name"] == model
    assert runs["mf_bpr"].info.experiment_id == runs["item_knn"].info.experiment_id  # side by side
    assert "champion_test_ndcg_at_10" in runs["item_knn"].data.metrics  # the second run met a champion


def test_training_curves_plots_input_snapshot_and_model_signature(runs) -> None:
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient()
    curve = client.get_metric_history(runs["mf_bpr"].info.run_id, "train_loss")
    assert [m.step for m in curve] == [0, 1, 2]
    for run in runs.values():
        run_id = run.info.run_id
        plots = {a.path for a in client.list_artifacts(run_id, "plots")}
        assert plots == {"plots/metrics_at_k.png", "plots/long_tail.png"}
        [dataset_input] = client.get_run(run_id).inputs.dataset_inputs
        assert dataset_input.dataset.name == f"{DATASET}-{DS}"
        assert dataset_input.dataset.source.find(f"snapshots/dataset={DATASET}/dt={DS}/events.parquet") >= 0
        assert {t.key: t.value for t in dataset_input.tags}["mlflow.data.context"] == "training"
        [version] = client.search_model_versions(f"run_id='{run_id}'")
        info = mlflow.models.get_model_info(f"models:/{version.name}/{version.version}")
        assert info.signature is not None and info.saved_input_example_info is not None
