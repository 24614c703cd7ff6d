"""The validate task on the local S3: quarantine, validated snapshot, report, Data Docs, baseline."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from recsys_lib import schema
from recsys_lib.errors import DataValidationError
from recsys_lib.pipelines import ingest, validate
from recsys_lib.sources import write_raw
from recsys_lib.sources.synthetic import generate_shop
from recsys_lib.storage import ObjectStore, layout

pytestmark = pytest.mark.integration
DS = "2026-03-01"


def _shop() -> tuple[pd.DataFrame, pd.DataFrame]:
    return generate_shop(n_users=50, n_items=30, n_categories=3, days=10, end=datetime(2026, 3, 2, tzinfo=UTC))


def test_a_few_bad_rows_are_quarantined_and_the_snapshot_holds_the_rest(local_stack) -> None:
    store = ObjectStore(local_stack.bucket)
    events, items = _shop()
    events.loc[:2, schema.EVENT_TYPE] = "refund"
    events.loc[5, schema.TIMESTAMP] = datetime(2027, 1, 1, tzinfo=UTC)
    write_raw(store, "q-shop", events, items)
    params = {"dataset": "q-shop"}

    out = validate.run(params, DS, ingested_uri=ingest.run(params, DS)["ingested_uri"])
    assert out["quarantined"] == 4 and out["snapshot_uri"] == store.uri(f"snapshots/dataset=q-shop/dt={DS}/")
    rejected = store.get_frame(layout.quarantine_key("q-shop", DS))
    assert (
        sorted(rejected["reason"].str.split(" ").str[0]) == ["timestamp_outside_interval"] + ["unknown_event_type"] * 3
    )
    snapshot = store.get_frame(layout.snapshot_key("q-shop", DS, "events"))
    assert len(snapshot) == len(events) - 4 and "refund" not in set(snapshot[schema.EVENT_TYPE])
    report = store.get_json(layout.validation_report_key("q-shop", DS))
    assert report["success"] is True and report["quarantined"] == 4
    assert report["quarantine_uri"] == store.uri(layout.quarantine_key("q-shop", DS))
    docs = store.get_bytes(layout.data_docs_prefix("q-shop", DS) + "index.html")
    assert b"events_rows" in docs
    assert store.head(layout.data_docs_prefix("q-shop", DS) + "index.html") is not None

    write_raw(store, "q-shop", *_shop())  # the upstream fixed its feed: a re-run leaves no stale quarantine
    assert validate.run(params, DS, ingested_uri=ingest.run(params, DS)["ingested_uri"])["quarantined"] == 0
    assert not store.exists(layout.quarantine_key("q-shop", DS))


def test_bad_data_fails_with_a_stored_report_and_no_snapshot(local_stack) -> None:
    store = ObjectStore(local_stack.bucket)
    events, items = _shop()
    events.loc[: len(events) // 5, schema.EVENT_TYPE] = "refund"
    write_raw(store, "bad-shop", events, items)
    params = {"dataset": "bad-shop"}

    ingested = ingest.run(params, DS)
    with pytest.raises(DataValidationError) as failure:
        validate.run(params, DS, ingested_uri=ingested["ingested_uri"])
    message = str(failure.value)
    assert "quarantine_share: events quarantine_share: " in message
    assert "unknown_event_type: events.event_type expect_column_values_to_be_in_set: " in message
    assert "e.g. ['refund']" in message
    assert failure.value.report_uri == store.uri(layout.validation_report_key("bad-shop", DS))
    report = store.get_json(layout.validation_report_key("bad-shop", DS))
    assert report["success"] is False
    assert not store.exists(layout.snapshot_key("bad-shop", DS, "events"))


def test_the_previous_passing_report_is_the_baseline(local_stack) -> None:
    store = ObjectStore(local_stack.bucket)
    events, items = _shop()
    params = {"dataset": "b-shop"}

    def validate_day(ds: str, frame: pd.DataFrame) -> dict:
        write_raw(store, "b-shop", frame, items)
        ingested = ingest.run(params, ds)["ingested_uri"]
        return validate.run(params, ds, ingested_uri=ingested, interval_end="2026-03-02T00:00:00+00:00")

    first = validate_day("2026-03-01", events)
    assert store.get_json(layout.validation_report_key("b-shop", "2026-03-01"))["baseline_ds"] is None
    spike = pd.concat([events.assign(session_id=f"s{i}") for i in range(5)], ignore_index=True)
    with pytest.raises(DataValidationError, match=r"volume: events expect_table_row_count_to_be_between"):
        validate_day("2026-03-02", spike)
    validate_day("2026-03-03", events)  # the failed day is not the next day's baseline
    report = store.get_json(layout.validation_report_key("b-shop", "2026-03-03"))
    assert report["baseline_ds"] == "2026-03-01" and report["success"] and first["events"] == len(events)
