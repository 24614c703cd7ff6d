"""Every case of the bad-input corpus against the real pipeline on the local S3 and MLflow servers.

A ``stop`` case ends in a DataValidationError naming the rule, the column and an example, before
anything is trained: no features for the day, no new MLflow run, and the champion alias and the
published ``_latest.json`` exactly as the last good run left them. A ``quarantine`` case moves the
offending rows to ``quarantine/`` with a reason and validates the rest into the snapshot.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

from recsys_lib.errors import DataValidationError
from recsys_lib.storage import ObjectStore, layout
from tests.badinput.corpus import CASES, Case

pytestmark = [pytest.mark.badinput, pytest.mark.integration]

DATASET = "corpus-shop"
GOOD_DAY, BAD_DAY = "2026-05-01", "2026-05-02"
PARAMS = {"dataset": DATASET, "model": "popularity", "k": 5, "export_shards": 1}
STOPS = [c for c in CASES if c.outcome == "stop"]
QUARANTINES = [c for c in CASES if c.outcome == "quarantine"]


def shop(day: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same small shop (about 3,000 events), its feed ending at the end of ``day``."""
    from recsys_lib.sources.synthetic import generate_shop

    end = datetime.fromisoformat(day).replace(tzinfo=UTC) + pd.Timedelta(days=1)
    return generate_shop(n_users=150, n_items=60, n_categories=5, days=20, end=end, seed=5)


def land(store: ObjectStore, files: dict[str, bytes]) -> None:
    """Replace everything under ``raw/<dataset>/`` with ``files``."""
    prefix = layout.raw_prefix(DATASET)
    store.delete([o.key for o in store.list_objects(prefix)])
    for name, data in files.items():
        store.put_bytes(prefix + name, data)


def published_state(store: ObjectStore) -> dict[str, Any]:
    """What a bad input must not change: champion version, pointer bytes, MLflow runs, features."""
    from mlflow import MlflowClient

    client = MlflowClient()
    experiment = client.get_experiment_by_name(f"recsys-{DATASET}")
    return {
        "champion": client.get_model_version_by_alias(f"recsys-{DATASET}", "champion").version,
        "latest": store.get_bytes(layout.latest_pointer_key("user_topk", DATASET)),
        "runs": len(client.search_runs([experiment.experiment_id], max_results=1000)),
        "features": store.list_objects(layout.features_prefix(DATASET, BAD_DAY)),
    }


@pytest.fixture(scope="module")
def store(local_stack) -> ObjectStore:
    """A good day retrained and published: the champion and the pointers the corpus must keep."""
    from recsys_lib.pipelines.runner import retrain

    store = ObjectStore(local_stack.bucket)
    land(store, _parquet(*shop(GOOD_DAY)))
    retrain(PARAMS, GOOD_DAY)
    return store


@pytest.fixture(scope="module")
def before(store: ObjectStore) -> dict[str, Any]:
    return published_state(store)


def _parquet(events: pd.DataFrame, items: pd.DataFrame) -> dict[str, bytes]:
    from tests.badinput.corpus import parquet

    return parquet(events, items)


def test_the_corpus_has_at_least_25_cases_with_distinct_names() -> None:
    assert len(CASES) >= 25
    assert len({c.name for c in CASES}) == len(CASES)
    assert STOPS and QUARANTINES


@pytest.mark.parametrize("case", STOPS, ids=lambda c: c.name)
def test_a_bad_input_stops_the_run_before_training(store: ObjectStore, before: dict, case: Case) -> None:
    from recsys_lib.pipelines.runner import retrain

    land(store, case.build(*shop(BAD_DAY)))
    with pytest.raises(DataValidationError) as raised:
        retrain({**PARAMS, **case.params}, BAD_DAY)
    lines = str(raised.value).splitlines()
    named = [line for line in lines if case.rule in line and case.column in line]
    assert named, f"no line names {case.rule} and {case.column}:\n{raised.value}"
    assert any(str(case.example) in line for line in named), f"no example {case.example!r}:\n{raised.value}"
    assert published_state(store) == before


@pytest.mark.parametrize("case", QUARANTINES, ids=lambda c: c.name)
def test_a_few_bad_rows_are_quarantined_with_their_reason_and_the_rest_validated(
    store: ObjectStore, case: Case
) -> None:
    from recsys_lib.pipelines import ingest, validate

    land(store, case.build(*shop(BAD_DAY)))
    params = {**PARAMS, **case.params}
    ingested = ingest.run(params, BAD_DAY)
    out = validate.run(params, BAD_DAY, ingested_uri=ingested["ingested_uri"])
    rejected = store.get_frame(layout.quarantine_key(DATASET, BAD_DAY))
    assert 0 < len(rejected) == out["quarantined"] <= 3
    assert all(r.startswith(f"{case.rule} ({case.column}: expected ") for r in rejected["reason"]), rejected["reason"]
    if case.column != "row":
        values = rejected[case.column].tolist()
        assert all(pd.isna(v) for v in values) if case.example is None else case.example in values
    snapshot = store.get_frame(layout.snapshot_key(DATASET, BAD_DAY, "events"))
    assert len(snapshot) + len(rejected) == ingested["events"] == len(snapshot) + out["quarantined"]
    report = store.get_json(layout.validation_report_key(DATASET, BAD_DAY))
    assert report["success"] and report["baseline_ds"] == GOOD_DAY


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("name", "failed_task"), [("corrupt_parquet", "ingest_snapshot"), ("volume_spike_10x", "validate")]
)
def test_in_airflow_the_failed_check_fails_its_task_once_and_nothing_downstream_runs(
    retrain_dag, store: ObjectStore, before: dict, name: str, failed_task: str
) -> None:
    from airflow.utils.state import DagRunState, TaskInstanceState

    [case] = [c for c in CASES if c.name == name]
    land(store, case.build(*shop(BAD_DAY)))
    run = retrain_dag.test(logical_date=datetime.fromisoformat(BAD_DAY).replace(tzinfo=UTC), run_conf=PARAMS)
    assert run.state == DagRunState.FAILED
    states = {ti.task_id: ti for ti in run.get_task_instances()}
    assert states[failed_task].state == TaskInstanceState.FAILED
    assert states[failed_task].try_number == 1  # bad data is not retried
    for task in ("build_features", "train", "evaluate_and_register", "publish"):
        assert states[task].state == TaskInstanceState.UPSTREAM_FAILED, task
    assert published_state(store) == before
