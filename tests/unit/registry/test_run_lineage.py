"""What the registry adds to a run without a server: MLflow's system tags with the step as source
and the project's commit, and the latest value of each of a model's metrics."""

from __future__ import annotations

import getpass

from recsys_lib.registry import lookup
from recsys_lib.registry import mlflow_registry as registry


def test_system_tags_name_the_user_the_step_and_the_commit() -> None:
    tags = registry.system_tags(source="recsys_lib.pipelines.train", git_commit="a" * 40)
    assert tags["mlflow.user"] == getpass.getuser()
    assert tags["mlflow.source.name"] == "recsys_lib.pipelines.train"
    assert tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.source.git.commit"] == "a" * 40


def test_an_unknown_commit_is_left_out_rather_than_guessed() -> None:
    assert "mlflow.source.git.commit" not in registry.system_tags(source="x", git_commit="unknown")
    assert "mlflow.source.git.commit" not in registry.system_tags(source="x", git_commit=None)


def test_latest_values_keeps_the_highest_step_then_the_newest_time() -> None:
    from mlflow.entities import Metric

    metrics = [
        Metric("loss", 0.9, timestamp=1, step=0),
        Metric("loss", 0.5, timestamp=2, step=2),
        Metric("loss", 0.7, timestamp=3, step=1),
        Metric("ndcg", 0.1, timestamp=1, step=0),
        Metric("ndcg", 0.2, timestamp=5, step=0),
    ]
    assert lookup.latest_values(metrics) == {"loss": 0.5, "ndcg": 0.2}
    assert lookup.latest_values([]) == {}


def test_the_logged_model_of_a_version_comes_from_its_source() -> None:
    from types import SimpleNamespace

    assert lookup.model_id_of(SimpleNamespace(model_id=None, source="models:/m-0c38db")) == "m-0c38db"
    assert lookup.model_id_of(SimpleNamespace(model_id="m-kept", source="models:/m-other")) == "m-kept"
    assert lookup.model_id_of(SimpleNamespace(model_id=None, source="runs:/abc/model")) is None
    assert lookup.model_id_of(SimpleNamespace(model_id=None, source="models:/name/3")) is None
