"""The MLflow registry against a real tracking server: pyfunc round trip, aliases, metrics."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys_lib import schema
from recsys_lib.config import FeaturesConfig, ModelConfig, TrainConfig
from recsys_lib.features import build_features
from recsys_lib.models import create_model
from recsys_lib.registry import mlflow_registry as registry
from recsys_lib.registry.promotion import CHAMPION
from recsys_lib.serving.bundle import ModelBundle

pytestmark = pytest.mark.integration
NAME = "recsys-registry-test"


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    from datetime import UTC, datetime

    from recsys_lib.sources.synthetic import generate_shop

    events, items = generate_shop(n_users=80, n_items=40, n_categories=4, days=20, end=datetime(2026, 1, 1, tzinfo=UTC))
    features = build_features(events, items, FeaturesConfig())
    model = create_model(ModelConfig(name="mf_bpr", embedding_dim=8), features.n_users, features.n_items)
    model.fit(features, TrainConfig(epochs=2))
    return ModelBundle.from_training(model, features).save(tmp_path_factory.mktemp("bundle") / "b")


def test_logged_model_round_trips_through_the_registry(local_stack, bundle_dir) -> None:
    import mlflow

    run_id = registry.start_run("registry-test", "rt", tags={"recsys.logical_date": "2026-01-01"}, params={"a": 1})
    registry.log_metrics(run_id, {"train_loss": 0.5}, step=0)
    registry.log_metrics(run_id, {"train_loss": 0.4}, step=1)
    assert registry.version_by_alias(NAME, CHAMPION) is None
    users = [*pd.read_parquet(bundle_dir / "user_ids.parquet")[schema.USER_ID][:3], "unknown-user"]
    version = registry.log_and_register(run_id, ModelBundle.load(bundle_dir), bundle_dir, NAME, users)
    registry.set_alias(NAME, CHAMPION, version.version)
    registry.end_run(run_id)

    champion = registry.version_by_alias(NAME, CHAMPION)
    assert champion is not None and champion.version == version.version and champion.run_id == run_id
    served = registry.load_bundle(f"models:/{NAME}@{CHAMPION}").recommend_ids(pd.Series(users).to_numpy(), 5)
    local = ModelBundle.load(bundle_dir).recommend_ids(pd.Series(users).to_numpy(), 5)
    pd.testing.assert_frame_equal(served, local)

    pyfunc = mlflow.pyfunc.load_model(f"models:/{NAME}/{version.version}")
    out = pyfunc.predict(pd.DataFrame({schema.USER_ID: users}), params={"k": 3})
    assert list(out.columns) == [schema.USER_ID, schema.RANK, schema.ITEM_ID, schema.SCORE]
    assert (out.groupby(schema.USER_ID).size() == 3).all()
    assert {"k"} <= {p.name for p in pyfunc.metadata.get_params_schema().params}
    history = mlflow.MlflowClient().get_metric_history(run_id, "train_loss")
    assert [m.step for m in history] == [0, 1]


def test_dev_mlflow_server_runs_no_background_job_consumers(local_stack) -> None:
    """MLflow 3's server would start seven always-polling huey consumers (GenAI jobs) that took
    about half a core from training on a 2-core machine; the dev stack turns job execution off."""
    import psutil

    server = psutil.Process(local_stack.mlflow.pid)
    commands = [" ".join(child.cmdline()) for child in server.children(recursive=True)]
    assert commands, "the MLflow server runs its web workers as child processes"
    assert not [c for c in commands if "huey" in c or "_job_runner" in c]
