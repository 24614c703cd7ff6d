"""A backfill of a partitioned shop through Airflow: each date reads only its window, never later landings.

The shop lands one ``events/dt=<day>/`` folder per day (and a catalogue snapshot) on the real moto
S3; the DAG runs with ``dag.test()`` for three logical dates, oldest first as a backfill does,
then once more for the middle date after the newest was published. A run of logical date D (Airflow
3: its data interval ends at D 00:00) reads the complete days up to D - 1.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from recsys_lib import schema
from recsys_lib.storage import ObjectStore, layout

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

DATASET = "backfill-shop"
WINDOW = 10
DATES = [datetime(2026, 10, d, tzinfo=UTC) for d in (20, 21, 22)]
CONF = {"dataset": DATASET, "window_days": WINDOW, "model": "popularity", "k": 5, "export_shards": 1}


@pytest.fixture(scope="module")
def store(local_stack) -> ObjectStore:
    """A 40-day shop landed daily up to 2026-10-25: later than every backfilled date."""
    from recsys_lib.sources import write_landings
    from recsys_lib.sources.synthetic import generate_shop

    store = ObjectStore(local_stack.bucket)
    events, items = generate_shop(end=datetime(2026, 10, 26, tzinfo=UTC), n_users=300, n_items=120, days=40, seed=3)
    write_landings(store, DATASET, events, items, catalogue_days=["2026-09-16", "2026-10-21"])
    store.put_bytes(f"raw/{DATASET}/events/dt=2026-10-24/truncated.csv.gz", b"\x1f\x8b not read by any backfilled date")
    return store


@pytest.fixture(scope="module")
def backfill(retrain_dag, store) -> list:
    from airflow.utils.state import DagRunState

    runs = []
    for logical_date in [*DATES, DATES[1]]:
        run = retrain_dag.test(logical_date=logical_date, run_conf=CONF)
        failed = [ti.task_id for ti in run.get_task_instances() if ti.state != "success"]
        assert run.state == DagRunState.SUCCESS, f"{logical_date:%Y-%m-%d}: failed tasks {failed}"
        runs.append(run)
    return runs


@pytest.mark.parametrize("logical_date", DATES, ids=lambda d: f"{d:%Y-%m-%d}")
def test_each_date_snapshot_holds_exactly_its_window(backfill, store, logical_date) -> None:
    ds = f"{logical_date:%Y-%m-%d}"
    events = store.get_frame(layout.snapshot_key(DATASET, ds, "events"))
    days = set(events[schema.TIMESTAMP].dt.strftime("%Y-%m-%d"))
    first = logical_date - timedelta(days=WINDOW)
    assert days == {f"{first + timedelta(days=n):%Y-%m-%d}" for n in range(WINDOW)}  # every day, none later
    assert events[schema.TIMESTAMP].max() < pd.Timestamp(logical_date)


def test_the_catalogue_is_the_newest_snapshot_not_after_the_date(backfill, store) -> None:
    from recsys_lib.pipelines import ingest

    first = ingest.run(CONF, "2026-10-20", interval_end="2026-10-20T00:00:00+00:00")
    second = ingest.run(CONF, "2026-10-22", interval_end="2026-10-22T00:00:00+00:00")
    assert (first["catalogue_day"], second["catalogue_day"]) == ("2026-09-16", "2026-10-21")
    assert first["landings"] == [f"2026-10-{d:02d}" for d in range(10, 20)]


def test_the_pointer_ends_on_the_newest_date_after_a_late_rerun(backfill, store) -> None:
    from recsys_lib.export import read_manifest

    for table in ("user_topk", "user_embeddings"):
        if store.exists(layout.latest_pointer_key(table, DATASET)):
            assert store.get_json(layout.latest_pointer_key(table, DATASET))["dt"] == "2026-10-22", table
    assert read_manifest(store, DATASET)["dt"] == "2026-10-22"
    assert read_manifest(store, DATASET, "2026-10-21")["dt"] == "2026-10-21"  # the re-run date is readable
