"""RunLogger: Lightning's MLflow logger into a run it does not own, against a real local store."""

from __future__ import annotations

import pytest

from recsys_lib.config import TrainConfig
from recsys_lib.training import EpochHistory, RunLogger, build_trainer


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """(tracking URI, client) of a fresh SQLite tracking store."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    return uri, MlflowClient(uri)


def _steps(client, run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in client.get_metric_history(run_id, key)]


def test_metrics_land_in_the_callers_run_at_their_epoch_and_the_run_stays_open(tracking, scripted, loaders, tmp_path):
    uri, client = tracking
    run_id = client.create_run(client.create_experiment("logger-test")).info.run_id
    config = TrainConfig(epochs=3, validate_every=2, accelerator="cpu")
    history = EpochHistory()
    trainer = build_trainer(config, callbacks=[history], checkpoint_dir=tmp_path, logger=RunLogger(uri, run_id))
    trainer.fit(scripted([0.2, 0.4]), *loaders)

    run = client.get_run(run_id)
    assert run.info.status == "RUNNING"  # the pipeline ends it, after storing the model
    assert _steps(client, run_id, "train_loss") == [
        (e, pytest.approx(h["train_loss"])) for e, h in enumerate(history.epochs)
    ]
    assert [s for s, _ in _steps(client, run_id, "epoch_seconds")] == [0, 1, 2]
    assert _steps(client, run_id, "val_ndcg_at_10") == [(1, 0.2), (2, 0.4)]  # every 2nd epoch and the last
    assert "epoch" not in run.data.metrics  # it is the step, not a metric

    refit = RunLogger(uri, run_id).continued(prefix="refit", epoch_offset=3)
    build_trainer(TrainConfig(epochs=2, accelerator="cpu"), logger=refit).fit(scripted([]), loaders[0])
    assert [s for s, _ in _steps(client, run_id, "refit_train_loss")] == [3, 4]
    assert len(_steps(client, run_id, "train_loss")) == 3
    assert client.get_run(run_id).info.status == "RUNNING"


def test_the_process_wide_tracking_uri_is_left_alone(tracking, scripted, loaders, tmp_path):
    import mlflow

    uri, client = tracking
    run_id = client.create_run(client.create_experiment("uri-test")).info.run_id
    before = mlflow.get_tracking_uri()
    build_trainer(TrainConfig(epochs=1, accelerator="cpu"), logger=RunLogger(uri, run_id)).fit(scripted([]), loaders[0])
    assert client.get_metric_history(run_id, "train_loss")
    assert mlflow.get_tracking_uri() == before != uri
