"""Shared fixtures: an isolated Airflow home, and real local servers for integration tests.

Airflow reads its configuration at import time, so the environment is set in pytest_configure,
before any test module can import it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"
BIN = Path(sys.executable).parent
_AIRFLOW_HOME = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    home = Path(tempfile.mkdtemp(prefix="recsys-test-airflow-"))
    config.stash[_AIRFLOW_HOME] = home
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        }
    )
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the per-session Airflow home (metadata DB, logs)."""
    home = config.stash.get(_AIRFLOW_HOME, None)
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata DB (dag.test needs one) with the ``gpu`` pool."""
    env = dict(os.environ)
    subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    subprocess.run(
        [str(BIN / "airflow"), "pools", "set", "gpu", "1", "GPU training slots"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return Path(os.environ["AIRFLOW_HOME"])


@pytest.fixture(scope="module")
def retrain_dag(airflow_db: Path) -> object:
    """The ``recsys_retrain`` DAG parsed from dags/ (no import errors), ready for ``dag.test()``.

    Parsed anew for each test module: ``dag.test(run_conf=...)`` leaves the conf in the DAG's
    params, so a module's runs must not inherit another module's (e.g. its ``model``)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return bag.get_dag("recsys_retrain")


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Real moto S3 and MLflow tracking server processes; their client env is exported."""
    from recsys_lib.devstack.services import start_stack, stop_stack

    stack = start_stack(tmp_path_factory.mktemp("stack"), bucket="recsys-test")
    saved = {k: os.environ.get(k) for k in stack.client_env()}
    os.environ.update(stack.client_env())
    try:
        yield stack
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        stop_stack(stack)


@pytest.fixture
def mock_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """In-process S3 (moto mock_aws) with one bucket; returns an ObjectStore on it (unit tests)."""
    from moto import mock_aws

    from recsys_lib.storage import ObjectStore

    for key in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "unit-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "unit-test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        store = ObjectStore("unit-bucket", "tenant-a")
        store.ensure_bucket()
        yield store
