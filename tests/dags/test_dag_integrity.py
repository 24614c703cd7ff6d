"""DagBag guard: the DAG imports cleanly, every task is a thin call into recsys_lib.pipelines."""

from __future__ import annotations

import copy
import inspect
import itertools
import subprocess
import sys

import pytest

from tests.conftest import DAGS

TASKS = [
    "ingest_snapshot",
    "validate",
    "build_features",
    "train",
    "evaluate_and_register",
    "plan_export",
    "export_shard",
    "export_items",
    "publish",
]


@pytest.fixture(scope="module")
def dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return bag.get_dag("recsys_retrain")


@pytest.mark.parametrize("dag_file", ["recsys_retrain.py", "recsys_outcomes.py"])
def test_dag_file_imports_fast_without_heavy_libraries(dag_file: str) -> None:
    code = (
        "import sys, runpy; runpy.run_path(sys.argv[1]);"
        "heavy = [m for m in ('torch', 'pandas', 'great_expectations', 'mlflow', 'boto3') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(DAGS / dag_file)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert out.stdout.strip().splitlines()[-1:] in ([], [""]), f"DAG parsing imported {out.stdout.strip()}"


def test_pipeline_order(dag) -> None:
    assert sorted(dag.task_ids) == sorted(TASKS)
    chain = [*TASKS[:6], "export_shard", "publish"]
    for upstream, downstream in [
        *itertools.pairwise(chain),
        ("plan_export", "export_items"),
        ("export_items", "publish"),
    ]:
        assert downstream in dag.get_task(upstream).downstream_task_ids, (upstream, downstream)


def test_export_is_mapped_over_the_planned_shards(dag) -> None:
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    assert isinstance(dag.get_task("export_shard"), MappedOperator)


def test_every_task_is_one_call_into_the_library_and_retries(dag) -> None:
    for task in dag.tasks:
        source = inspect.getsource(task.python_callable)
        assert "from recsys_lib.pipelines import" in source, task.task_id
        assert task.retries >= 1, task.task_id
        assert task.execution_timeout is not None, task.task_id


def test_training_runs_in_gpu_pool_and_publish_emits_the_asset(dag) -> None:
    assert dag.get_task("train").pool == "gpu"
    outlets = dag.get_task("publish").outlets
    assert [a.name for a in outlets] == ["recsys_recommendations"]


@pytest.mark.parametrize(
    ("name", "value"), [("model", "deep-magic"), ("k", 0), ("dataset", "../etc"), ("epochs", "many"), ("source", "x")]
)
def test_trigger_form_rejects_invalid_params(dag, name: str, value: object) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    params = copy.deepcopy(dag.params)
    with pytest.raises(ParamValidationError, match=name):
        params[name] = value


def test_param_defaults_are_valid_config(dag) -> None:
    from recsys_lib.config import load_config

    config = load_config(overrides=dag.params.dump())
    assert config.model.name == "als" and config.export.k == 10


@pytest.fixture(scope="module")
def outcomes_dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return bag.get_dag("recsys_outcomes")


def test_outcomes_dag_is_one_thin_task_with_valid_defaults(outcomes_dag) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    from recsys_lib.config import load_config

    assert outcomes_dag.task_ids == ["report_outcomes"]
    task = outcomes_dag.get_task("report_outcomes")
    assert "from recsys_lib.pipelines import outcomes" in inspect.getsource(task.python_callable)
    assert task.retries >= 1 and task.execution_timeout is not None
    params = outcomes_dag.params.dump()
    assert params.pop("export_dt") is None
    assert load_config(overrides=params).outcomes.window_days == 7
    with pytest.raises(ParamValidationError, match="dataset"):
        copy.deepcopy(outcomes_dag.params)["dataset"] = "../etc"
