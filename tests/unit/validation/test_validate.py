from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from recsys_lib import schema
from recsys_lib.config import ValidationConfig
from recsys_lib.errors import ConfigError, DataValidationError
from recsys_lib.sources.synthetic import generate_shop
from recsys_lib.validation import RuleOutcome, ValidationReport, raise_for_failures, validate_tables

Frames = tuple[pd.DataFrame, pd.DataFrame]
END = datetime(2024, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def shop() -> Frames:
    """A synthetic shop (about 1,250 events) that passes every rule."""
    return generate_shop(n_users=60, n_items=50, n_categories=4, end=END, seed=2)


def _check(events: pd.DataFrame, items: pd.DataFrame, **kwargs):
    return validate_tables(events, items, interval_end=END, interval_start=END - timedelta(days=60), **kwargs)


def test_a_synthetic_shop_passes_every_rule(shop: Frames) -> None:
    events, items = shop
    result = _check(events, items)
    report = result.report
    assert report.success, [o.describe() for o in report.failures()]
    assert report.warnings() == [] and report.quarantined == 0 and result.rejected.empty
    assert report.row_counts == {"events": len(events), "items": 50}
    assert len(result.events) == len(events)
    assert report.profile["events"] == len(events)
    assert sum(report.profile["event_type"].values()) == pytest.approx(1.0)
    raise_for_failures(report)  # no error


@pytest.mark.parametrize("with_docs", [False, True])
def test_no_validated_frame_outlives_the_validation(shop: Frames, tmp_path, with_docs: bool) -> None:
    """GX keeps its newest context in a module-level project manager; the frames it validated must
    not stay reachable from there (they held a snapshot's size through every later stage)."""
    import gc
    import weakref

    events, items = (frame.copy() for frame in shop)
    refs = [weakref.ref(events), weakref.ref(items)]
    result = _check(events, items, docs_dir=tmp_path if with_docs else None)
    assert result.report.success
    del events, items, result
    gc.collect()
    assert [ref() is None for ref in refs] == [True, True]


def test_no_per_row_metric_outlives_its_suite(shop: Frames) -> None:
    """GX's execution engine caches every metric it resolves, per-row Series included (value
    lengths, condition masks: ~45 bytes per event after the row-level suite); each suite's are
    dropped once its results are in."""
    from recsys_lib.validation import validate as V
    from recsys_lib.validation.expectations import events_rules

    events = shop[0].reset_index(drop=True)
    rules = events_rules(events.dtypes, interval_end=V._utc(END))
    with V._Runner(None) as runner:
        engine = runner.source.get_execution_engine()
        seen = []
        real = engine.resolve_metrics

        def resolve(*args, **kwargs):
            out = real(*args, **kwargs)
            values = [x for v in engine._metric_cache.values() for x in (v if isinstance(v, tuple) else (v,))]
            seen.append(any(isinstance(x, pd.Series) and len(x) == len(events) for x in values))
            return out

        engine.resolve_metrics = resolve
        runner.run("events_rows", events, [r for r in rules if r.key[1] != "row_fingerprint"], V.COMPLETE)
        assert any(seen)  # GX cached per-row Series while the suite ran
        assert not engine._metric_cache  # and none is left


def test_the_report_is_json_serialisable(events: pd.DataFrame, items: pd.DataFrame, interval_end: datetime) -> None:
    events.loc[0, schema.TIMESTAMP] = pd.Timestamp("2030-01-01", tz="UTC")
    report = validate_tables(events, items, interval_end=interval_end).report
    loaded = json.loads(json.dumps(report.to_dict()))
    assert loaded["quarantined"] == 1 and loaded["success"] is False  # 1 of 4 rows is over the 5% share
    assert len(loaded["outcomes"]) == len(report.outcomes)
    assert ["2030-01-01T00:00:00+00:00"] in [o["examples"] for o in loaded["outcomes"]]


def _set(column: str, row: int, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(events: pd.DataFrame) -> pd.DataFrame:
        events.loc[row, column] = value
        return events

    return change


def _duplicate(events: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([events, events.iloc[[7]]], ignore_index=True)


BETWEEN = "expect_column_values_to_be_between"
# case: (change, check, column, examples)
ROW_RULES = {
    "null user": (_set(schema.USER_ID, 1, None), "null_user_id", schema.USER_ID, [None]),
    "null item": (_set(schema.ITEM_ID, 2, None), "null_item_id", schema.ITEM_ID, [None]),
    "unknown event type": (_set(schema.EVENT_TYPE, 3, "refund"), "unknown_event_type", schema.EVENT_TYPE, ["refund"]),
    "negative price": (_set(schema.PRICE, 4, -3.0), "negative_price", schema.PRICE, [-3.0]),
    "zero quantity": (_set(schema.QUANTITY, 5, 0), "quantity_below_1", schema.QUANTITY, [0]),
    "future timestamp": (
        _set(schema.TIMESTAMP, 6, pd.Timestamp("2024-06-01 00:00:01", tz="UTC")),
        "timestamp_outside_interval", schema.TIMESTAMP, ["2024-06-01T00:00:01+00:00"],
    ),
    "too old timestamp": (
        _set(schema.TIMESTAMP, 6, pd.Timestamp("2020-01-01", tz="UTC")),
        "timestamp_outside_interval", schema.TIMESTAMP, ["2020-01-01T00:00:00+00:00"],
    ),
    "exact duplicate": (_duplicate, "exact_duplicate", None, None),
}  # fmt: skip


@pytest.mark.parametrize("case", list(ROW_RULES))
def test_a_row_breaking_a_row_rule_is_quarantined_with_its_reason(shop: Frames, case: str) -> None:
    change, check, column, examples = ROW_RULES[case]
    events, items = shop[0].copy(), shop[1]
    changed = change(events)
    result = _check(changed, items)
    assert result.report.success  # one row in ~1,250 is under the 5% share
    [rejected] = result.rejected.to_dict("records")
    assert rejected["reason"].startswith(f"{check} ({column or 'row'}: expected ")
    assert len(result.events) == len(changed) - 1
    [rule] = result.report.quarantine_rules()
    assert (rule.check, rule.column, rule.severity) == (check, column, "quarantine")
    if examples is not None:
        assert rule.examples == examples


def test_duplicates_keep_their_first_copy(shop: Frames) -> None:
    events = pd.concat([shop[0], shop[0].iloc[[3, 3, 9]]], ignore_index=True)
    result = _check(events, shop[1])
    assert result.report.quarantined == 3
    pd.testing.assert_frame_equal(
        result.events.sort_values([schema.USER_ID, schema.TIMESTAMP]).reset_index(drop=True),
        shop[0].sort_values([schema.USER_ID, schema.TIMESTAMP]).reset_index(drop=True),
    )


def test_a_row_breaking_two_rules_names_both(shop: Frames) -> None:
    events = shop[0].copy()
    events.loc[0, [schema.EVENT_TYPE, schema.PRICE]] = ["refund", -1.0]
    [reason] = _check(events, shop[1]).rejected["reason"]
    assert reason.startswith("unknown_event_type (event_type") and "; negative_price (price" in reason


def test_above_the_quarantine_share_the_run_fails_naming_each_row_rule(shop: Frames) -> None:
    events = shop[0].copy()
    events.loc[: len(events) // 10, schema.EVENT_TYPE] = "refund"
    report = _check(events, shop[1]).report
    [failure] = report.failures()
    assert failure.check == "quarantine_share" and "above validation.max_quarantine_share 5.0%" in failure.detail
    with pytest.raises(DataValidationError) as raised:
        raise_for_failures(report, report_uri="s3://b/validation/report.json")
    lines = str(raised.value).splitlines()
    assert lines[1].startswith("quarantine_share: events quarantine_share: ")
    assert any(
        line.startswith("  unknown_event_type: events.event_type expect_column_values_to_be_in_set: ")
        and "e.g. ['refund']" in line
        for line in lines
    )
    assert lines[-1] == "full report: s3://b/validation/report.json"
    assert _check(events, shop[1], settings=ValidationConfig(max_quarantine_share=0.2)).report.success


ITEMS_BROKEN = {
    "negative item price": (schema.PRICE, 1, -1.0, BETWEEN, [-1.0]),
    "duplicate item id": (schema.ITEM_ID, 1, "i1", "expect_column_values_to_be_unique", ["i1"]),
    "null item id": (schema.ITEM_ID, 1, None, "expect_column_values_to_not_be_null", [None]),
}


@pytest.mark.parametrize("case", list(ITEMS_BROKEN))
def test_each_broken_catalogue_rule_fails_with_its_column_and_examples(
    case: str, events: pd.DataFrame, items: pd.DataFrame, interval_end: datetime
) -> None:
    column, row, value, rule, examples = ITEMS_BROKEN[case]
    items.loc[row, column] = value
    settings = ValidationConfig(min_catalogue_share=0)
    report = validate_tables(events, items, interval_end=interval_end, settings=settings).report
    [failure] = report.failures()
    assert (failure.table, failure.rule, failure.column, failure.examples) == ("items", rule, column, examples)
    with pytest.raises(DataValidationError) as raised:
        raise_for_failures(report)
    assert f"items.{column} {rule}: {failure.unexpected_count} unexpected, e.g. {examples!r}" in str(raised.value)
    assert raised.value.failures == [failure.to_dict()]


def test_referential_integrity_counts_events_whose_item_is_not_in_the_catalogue(shop: Frames) -> None:
    events, items = shop
    items = items[~items[schema.ITEM_ID].isin(["i00001", "i00002"])]
    missing = events[schema.ITEM_ID].isin(["i00001", "i00002"]).mean()
    assert 0 < missing < 0.2
    report = _check(events, items, settings=ValidationConfig(min_catalogue_share=1 - missing / 2)).report
    [failure] = report.failures()
    assert failure.check == "referential_integrity" and set(failure.examples) == {"i00001", "i00002"}
    assert _check(events, items, settings=ValidationConfig(min_catalogue_share=1 - missing)).report.success


def test_volume_and_mix_are_compared_with_the_previous_profile(shop: Frames) -> None:
    events, items = shop
    baseline = _check(events, items).report.profile
    assert _check(events, items, baseline=baseline).report.success
    spike = pd.concat([events.assign(session_id=f"copy{i}") for i in range(10)], ignore_index=True)
    failed = {o.check: o for o in _check(spike, items, baseline=baseline).report.failures()}
    assert set(failed) == {"volume"} and f"observed {len(spike)}" in failed["volume"].detail
    views_only = events[events[schema.EVENT_TYPE] == schema.VIEW]
    half = pd.concat([views_only] * 2, ignore_index=True).assign(session_id=lambda f: f.index.astype(str))
    failed = {o.check: o for o in _check(half, items, baseline=baseline).report.failures()}
    assert set(failed) == {"event_type_drift"} and "KL divergence" in failed["event_type_drift"].detail
    one_category = items.assign(category="c-new")
    failed = {o.check for o in _check(events, one_category, baseline=baseline).report.failures()}
    assert failed == {"category_drift"}


def test_freshness_needs_a_recent_newest_event(shop: Frames) -> None:
    events, items = shop
    later = END + timedelta(days=3)
    report = validate_tables(events, items, interval_end=later).report
    [failure] = report.failures()
    assert failure.check == "freshness" and "validation.freshness_hours=48" in failure.detail
    assert validate_tables(events, items, interval_end=later, check_freshness=False).report.success
    assert validate_tables(events, items, interval_end=later, settings=ValidationConfig(freshness_hours=96)).success


def test_severity_warn_reports_without_failing(shop: Frames) -> None:
    events, items = shop
    settings = ValidationConfig(severity={"freshness": "warn"})
    report = validate_tables(events, items, interval_end=END + timedelta(days=3), settings=settings).report
    assert report.success and [w.check for w in report.warnings()] == ["freshness"]
    uncategorised = items.assign(category=None)
    report = _check(events, uncategorised).report  # catalogue_categories warns by default
    assert [w.check for w in report.warnings()] == ["catalogue_categories"]
    with pytest.raises(ValueError, match="severity"):
        ValidationConfig(severity={"no_such_check": "warn"})


def test_a_missing_column_is_a_failure_not_a_crash(
    events: pd.DataFrame, items: pd.DataFrame, interval_end: datetime
) -> None:
    report = validate_tables(events.drop(columns=[schema.EVENT_TYPE]), items, interval_end=interval_end).report
    [failure] = report.failures()
    assert (failure.rule, failure.column) == ("expect_column_to_exist", schema.EVENT_TYPE)
    assert "item_id" in (failure.detail or "")
    with pytest.raises(
        DataValidationError, match=r"events\.event_type expect_column_to_exist: expected the column to exist"
    ):
        raise_for_failures(report)


def test_an_empty_events_table_fails(events: pd.DataFrame, items: pd.DataFrame, interval_end: datetime) -> None:
    report = validate_tables(events.iloc[:0], items, interval_end=interval_end).report
    [failure] = report.failures()
    assert (failure.rule, failure.column) == ("expect_table_row_count_to_be_between", None)
    assert failure.describe() == "events expect_table_row_count_to_be_between: expected at least 1 row, observed 0"


def test_wrong_dtypes_fail_the_type_rules(events: pd.DataFrame, items: pd.DataFrame, interval_end: datetime) -> None:
    events = events.astype({schema.TIMESTAMP: "str", schema.USER_ID: "object"})
    events.loc[0, schema.USER_ID] = 42
    report = validate_tables(events, items, interval_end=interval_end).report
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
    result = validate_tables(
        events, items, interval_end=interval_end, interval_start=start, event_types=["view", "purchase"]
    )
    rules = {o.check: o for o in result.report.quarantine_rules()}
    assert rules["timestamp_outside_interval"].examples == ["2024-03-01T10:00:00+00:00", "2024-03-01T10:01:00+00:00"]
    assert rules["unknown_event_type"].examples == ["add_to_cart"]
    assert result.report.quarantined == 2  # row 1 breaks both rules


def test_naive_interval_bounds_are_utc_and_must_be_ordered(events: pd.DataFrame, items: pd.DataFrame) -> None:
    assert validate_tables(events, items, interval_end=datetime(2024, 3, 2)).success
    with pytest.raises(ConfigError, match="interval_start"):
        validate_tables(events, items, interval_end=datetime(2024, 3, 2), interval_start=datetime(2024, 3, 3))


def test_data_docs_are_rendered_when_asked(shop: Frames, tmp_path) -> None:
    result = _check(*shop, docs_dir=tmp_path)
    index = result.docs_site / "index.html"
    assert index.is_file()
    suites = {p.name for p in (result.docs_site / "validations").iterdir()}
    assert suites == {"events_rows", "events_dataset", "items"}


def test_a_passing_report_raises_nothing() -> None:
    outcome = RuleOutcome("events", "expect_column_values_to_not_be_null", "user_id", True, 0, [])
    raise_for_failures(ValidationReport(success=True, outcomes=[outcome], row_counts={"events": 3, "items": 1}))


def test_impressions_and_clicks_are_validated_but_not_counted_as_behaviour(shop: Frames) -> None:
    """A shop that starts logging impressions (here 3x its events) passes the volume and drift
    checks against a profile taken before: those describe what shoppers did, not what we showed."""
    events, items = shop
    before = _check(events, items).report.profile
    shown = pd.concat([events] * 3, ignore_index=True)
    shown = shown.assign(
        **{
            schema.EVENT_TYPE: schema.IMPRESSION,
            schema.PLACEMENT: "home",
            schema.SESSION_ID: "shown-" + pd.Series(range(len(shown))).astype(str),
        }
    )
    result = _check(pd.concat([events, shown], ignore_index=True), items, baseline=before)
    assert result.report.success, [o.describe() for o in result.report.failures()]
    assert result.report.profile == before  # the profile is of behaviour only
    assert len(result.events) == 4 * len(events)  # the impressions are in the snapshot
    assert {o.check for o in result.report.outcomes} >= {"volume", "event_type_drift"}


def test_a_fingerprint_collision_quarantines_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every row given the same fingerprint: GX flags them all, the value comparison keeps only
    the true duplicate, and the outcome counts and shows the copies themselves."""
    from recsys_lib.validation import validate as V

    events, items = generate_shop(n_users=30, n_items=20, n_categories=3, end=END, seed=4)
    events = pd.concat([events, events.iloc[[5]]], ignore_index=True)
    monkeypatch.setattr(V, "row_fingerprints", lambda frame, columns: np.zeros(len(frame), np.uint64))
    result = V.validate_tables(events, items, interval_end=END, interval_start=END - timedelta(days=60))
    assert result.report.quarantined == 1 and len(result.events) == len(events) - 1
    [rule] = [o for o in result.report.outcomes if o.check == "exact_duplicate"]
    assert (rule.success, rule.unexpected_count, rule.column) == (False, 2, None)
    assert rule.examples and str(events.loc[5, "user_id"]) in str(rule.examples[0])
