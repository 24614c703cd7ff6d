from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from recsys_lib import schema
from recsys_lib.errors import ConfigError, DataValidationError
from recsys_lib.sources.synthetic import generate_shop
from recsys_lib.validation import RuleOutcome, ValidationReport, raise_for_failures, validate_tables

Frames = tuple[pd.DataFrame, pd.DataFrame]


def test_a_synthetic_shop_passes_every_rule() -> None:
    end = datetime(2024, 6, 1, tzinfo=UTC)
    events, items = generate_shop(n_users=60, n_items=50, n_categories=4, end=end, seed=2)
    report = validate_tables(events, items, interval_end=end, interval_start=end - timedelta(days=60))
    assert report.success, [o.rule for o in report.failures()]
    assert report.row_counts == {"events": len(events), "items": 50}
    raise_for_failures(report)  # no error


def test_the_report_is_json_serialisable(events: pd.DataFrame, items: pd.DataFrame, interval_end: datetime) -> None:
    events.loc[0, schema.TIMESTAMP] = pd.Timestamp("2030-01-01", tz="UTC")
    report = validate_tables(events, items, interval_end=interval_end)
    loaded = json.loads(json.dumps(report.to_dict()))
    assert loaded["success"] is False and loaded["failed_rules"] == 1
    assert len(loaded["outcomes"]) == len(report.outcomes)
    assert ["2030-01-01T00:00:00+00:00"] in [o["examples"] for o in loaded["outcomes"]]


def _set(table: str, column: str, row: int, value: object) -> Callable[[pd.DataFrame, pd.DataFrame], Frames]:
    def change(events: pd.DataFrame, items: pd.DataFrame) -> Frames:
        frame = events if table == "events" else items
        frame.loc[row, column] = value
        return events, items

    return change


def _unknown_types(events: pd.DataFrame, items: pd.DataFrame) -> Frames:
    events.loc[[0, 1, 3], schema.EVENT_TYPE] = ["click", "buy", "click"]
    return events, items


NOT_NULL, BETWEEN = "expect_column_values_to_not_be_null", "expect_column_values_to_be_between"
LATE = pd.Timestamp("2024-03-02 00:00:01", tz="UTC")
# case: (change, table, rule, column, examples)
BROKEN = {
    "null user": (_set("events", schema.USER_ID, 1, None), "events", NOT_NULL, schema.USER_ID, [None]),
    "unknown event type": (
        _unknown_types, "events", "expect_column_values_to_be_in_set", schema.EVENT_TYPE, ["click", "buy"],
    ),
    "negative event price": (_set("events", schema.PRICE, 2, -3.0), "events", BETWEEN, schema.PRICE, [-3.0]),
    "zero quantity": (_set("events", schema.QUANTITY, 1, 0), "events", BETWEEN, schema.QUANTITY, [0]),
    "future timestamp": (
        _set("events", schema.TIMESTAMP, 3, LATE), "events", BETWEEN, schema.TIMESTAMP, ["2024-03-02T00:00:01+00:00"],
    ),
    "negative item price": (_set("items", schema.PRICE, 1, -1.0), "items", BETWEEN, schema.PRICE, [-1.0]),
    "duplicate item id": (
        _set("items", schema.ITEM_ID, 1, "i1"), "items", "expect_column_values_to_be_unique", schema.ITEM_ID, ["i1"],
    ),
    "null item id": (_set("items", schema.ITEM_ID, 1, None), "items", NOT_NULL, schema.ITEM_ID, [None]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BROKEN))
def test_each_broken_rule_is_reported_with_its_column_and_examples(
    case: str, events: pd.DataFrame, items: pd.DataFrame, interval_end: datetime
) -> None:
    change, table, rule, column, examples = BROKEN[case]
    report = validate_tables(*change(events, items), interval_end=interval_end)
    assert not report.success
    [failure] = report.failures()
    assert (failure.table, failure.rule, failure.column, failure.examples) == (table, rule, column, examples)
    with pytest.raises(DataValidationError) as raised:
        raise_for_failures(report)
    assert (
        f"{table}.{column} {rule}: {failure.unexpected_count} unexpected, e.g. {examples!r}"
        in str(raised.value).splitlines()
    )
    assert raised.value.failures == [failure.to_dict()]


def test_the_message_lists_each_failed_rule_on_its_own_line(
    events: pd.DataFrame, items: pd.DataFrame, interval_end: datetime
) -> None:
    events, items = _unknown_types(events, items)
    events.loc[0, schema.USER_ID] = None
    report = validate_tables(events, items, interval_end=interval_end)
    with pytest.raises(DataValidationError) as raised:
        raise_for_failures(report, report_uri="s3://bucket/validation/report.json")
    lines = str(raised.value).splitlines()
    assert "events.event_type expect_column_values_to_be_in_set: 3 unexpected, e.g. ['click', 'buy']" in lines
    assert "events.user_id expect_column_values_to_not_be_null: 1 unexpected, e.g. [None]" in lines
    assert lines[-1] == "full report: s3://bucket/validation/report.json"
    assert raised.value.report_uri == "s3://bucket/validation/report.json"


def test_a_missing_column_is_a_failure_not_a_crash(
    events: pd.DataFrame, items: pd.DataFrame, interval_end: datetime
) -> None:
    report = validate_tables(events.drop(columns=[schema.EVENT_TYPE]), items, interval_end=interval_end)
    [failure] = report.failures()
    assert (failure.rule, failure.column) == ("expect_column_to_exist", schema.EVENT_TYPE)
    assert "item_id" in (failure.detail or "")
    with pytest.raises(
        DataValidationError, match=r"events\.event_type expect_column_to_exist: expected the column to exist"
    ):
        raise_for_failures(report)


def test_an_empty_events_table_fails(events: pd.DataFrame, items: pd.DataFrame, interval_end: datetime) -> None:
    report = validate_tables(events.iloc[:0], items, interval_end=interval_end)
    [failure] = report.failures()
    assert (failure.rule, failure.column) == ("expect_table_row_count_to_be_between", None)
    assert failure.describe() == "events expect_table_row_count_to_be_between: expected at least 1 row, observed 0"


def test_wrong_dtypes_fail_the_type_rules(events: pd.DataFrame, items: pd.DataFrame, interval_end: datetime) -> None:
    events = events.astype({schema.TIMESTAMP: "str", schema.USER_ID: "object"})
    events.loc[0, schema.USER_ID] = 42
    report = validate_tables(events, items, interval_end=interval_end)
    failed = {(o.column, o.rule): o for o in report.failures()}
    assert set(failed) == {
        (schema.TIMESTAMP, "expect_column_values_to_be_of_type"),
        (schema.USER_ID, "expect_column_values_to_be_of_type"),
    }
    assert failed[(schema.USER_ID, "expect_column_values_to_be_of_type")].examples == [42]
    assert "observed 'str'" in (failed[(schema.TIMESTAMP, "expect_column_values_to_be_of_type")].detail or "")


def test_interval_start_and_event_types_are_configurable(
    events: pd.DataFrame, items: pd.DataFrame, interval_end: datetime
) -> None:
    start = datetime(2024, 3, 1, 10, 3, tzinfo=UTC)
    report = validate_tables(
        events, items, interval_end=interval_end, interval_start=start, event_types=["view", "purchase"]
    )
    failed = {o.column: o for o in report.failures()}
    assert failed[schema.TIMESTAMP].examples == ["2024-03-01T10:00:00+00:00", "2024-03-01T10:01:00+00:00"]
    assert failed[schema.EVENT_TYPE].examples == ["add_to_cart"]


def test_naive_interval_bounds_are_utc_and_must_be_ordered(events: pd.DataFrame, items: pd.DataFrame) -> None:
    assert validate_tables(events, items, interval_end=datetime(2024, 3, 2)).success
    with pytest.raises(ConfigError, match="interval_start"):
        validate_tables(events, items, interval_end=datetime(2024, 3, 2), interval_start=datetime(2024, 3, 3))


def test_a_passing_report_raises_nothing() -> None:
    outcome = RuleOutcome("events", "expect_column_values_to_not_be_null", "user_id", True, 0, [])
    raise_for_failures(ValidationReport(success=True, outcomes=[outcome], row_counts={"events": 3, "items": 1}))
