"""Bad raw data stops the pipeline at validation with a report in S3 and a message naming the rule."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from recsys_lib import schema
from recsys_lib.errors import DataValidationError
from recsys_lib.pipelines import ingest, validate
from recsys_lib.storage import ObjectStore, layout

pytestmark = pytest.mark.integration
DS = "2026-03-01"


def test_bad_events_fail_validation_with_a_stored_report(local_stack) -> None:
    from recsys_lib.sources import write_raw
    from recsys_lib.sources.synthetic import generate_shop

    store = ObjectStore(local_stack.bucket)
    events, items = generate_shop(n_users=50, n_items=30, n_categories=3, days=10, end=datetime(2026, 3, 1, tzinfo=UTC))
    events.loc[:2, schema.EVENT_TYPE] = "click"
    events.loc[5, schema.TIMESTAMP] = datetime(2027, 1, 1, tzinfo=UTC)
    write_raw(store, "bad-shop", events, items)
    params = {"dataset": "bad-shop"}

    snapshot = ingest.run(params, DS)
    with pytest.raises(DataValidationError) as failure:
        validate.run(params, DS, snapshot_uri=snapshot["snapshot_uri"])
    message = str(failure.value)
    assert "events.event_type expect_column_values_to_be_in_set: 3 unexpected, e.g. ['click']" in message
    assert "events.timestamp" in message and "2027-01-01" in message
    assert failure.value.report_uri == store.uri(layout.validation_report_key("bad-shop", DS))
    report = store.get_json(layout.validation_report_key("bad-shop", DS))
    assert report["success"] is False
    assert {(f["column"], f["rule"]) for f in report["outcomes"] if not f["success"]} == {
        ("event_type", "expect_column_values_to_be_in_set"),
        ("timestamp", "expect_column_values_to_be_between"),
    }
