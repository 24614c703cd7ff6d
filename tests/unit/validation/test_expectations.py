"""The rule lists are plain data: checked here without running Great Expectations."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys_lib import schema
from recsys_lib.validation.expectations import (
    MISSING_ITEM,
    NO_CATEGORY,
    dataset_frame,
    events_rules,
    items_rules,
    profile,
)
from recsys_lib.validation.validate import distinct_examples, json_value

END = pd.Timestamp("2024-03-02", tz="UTC")


def _keys(rules: list) -> set[tuple[str, str | None]]:
    return {rule.key for rule in rules}


def test_canonical_events_get_every_contract_rule(events: pd.DataFrame) -> None:
    keys = _keys(events_rules(events.dtypes, interval_end=END))
    for column in schema.EVENTS_REQUIRED:
        assert ("expect_column_to_exist", column) in keys
        assert ("expect_column_values_to_not_be_null", column) in keys
    for column in schema.EVENTS_DTYPES:
        assert ("expect_column_values_to_be_of_type", column) in keys
    assert {
        ("expect_table_row_count_to_be_between", None),
        ("expect_column_values_to_be_in_set", schema.EVENT_TYPE),
        ("expect_column_values_to_be_between", schema.TIMESTAMP),
        ("expect_column_values_to_be_between", schema.QUANTITY),
        ("expect_column_values_to_be_between", schema.PRICE),
    } <= keys


def test_rule_keys_are_unique_within_a_table(events: pd.DataFrame, items: pd.DataFrame) -> None:
    for rules in (events_rules(events.dtypes, interval_end=END), items_rules(items.dtypes)):
        assert len(_keys(rules)) == len(rules)


def test_a_missing_column_only_gets_its_existence_rule(events: pd.DataFrame) -> None:
    rules = events_rules(events.drop(columns=[schema.TIMESTAMP, schema.PRICE]).dtypes, interval_end=END)
    assert [r.expectation for r in rules if r.column == schema.TIMESTAMP] == ["expect_column_to_exist"]
    assert [r for r in rules if r.column == schema.PRICE] == []  # optional and absent: nothing to check


def test_range_rules_need_a_comparable_dtype(events: pd.DataFrame) -> None:
    dtypes = events.astype({schema.TIMESTAMP: "str", schema.PRICE: "str"}).dtypes
    keys = _keys(events_rules(dtypes, interval_end=END))
    assert ("expect_column_values_to_be_between", schema.TIMESTAMP) not in keys
    assert ("expect_column_values_to_be_between", schema.PRICE) not in keys
    assert ("expect_column_values_to_be_of_type", schema.TIMESTAMP) in keys


def test_items_need_a_unique_id_and_a_non_negative_price(items: pd.DataFrame) -> None:
    rules = {r.key: r for r in items_rules(items.dtypes)}
    assert ("expect_column_values_to_be_unique", schema.ITEM_ID) in rules
    assert rules[("expect_column_values_to_be_between", schema.PRICE)].kwargs == {"min_value": 0}
    assert rules[("expect_column_values_to_be_of_type", schema.ITEM_ID)].kwargs == {"type_": "str"}


def test_examples_become_distinct_json_scalars() -> None:
    import numpy as np

    values = [np.int64(3), np.float64("nan"), None, pd.NA, pd.Timestamp("2024-01-01", tz="UTC"), "x", 3, "y", "z"]
    assert distinct_examples(values) == [3, None, "2024-01-01T00:00:00+00:00", "x", "y"]
    assert json_value(np.bool_(True)) is True


def test_the_dataset_frame_maps_categories_and_names_missing_items() -> None:
    events = pd.DataFrame({schema.ITEM_ID: pd.Series(["a", "b", "zz", None, "a"], dtype="str")})
    items = pd.DataFrame(
        {schema.ITEM_ID: pd.Series(["a", "b", "c", "a"], dtype="str"), schema.CATEGORY: ["x", None, "y", "w"]}
    )
    frame = dataset_frame(events, items)
    assert frame[schema.CATEGORY].astype("str").tolist() == ["x", NO_CATEGORY, NO_CATEGORY, NO_CATEGORY, "x"]
    assert frame[MISSING_ITEM].astype(object).where(frame[MISSING_ITEM].notna(), None).tolist() == [
        None,
        None,
        "zz",
        None,
        None,
    ]
    # the drift profile lists only the categories events have ("y" is in the catalogue, unused)
    assert profile(frame.assign(**{schema.EVENT_TYPE: "view"}))[schema.CATEGORY] == {"x": 0.4, NO_CATEGORY: 0.6}


def test_an_empty_catalogue_leaves_every_event_missing() -> None:
    events = pd.DataFrame({schema.ITEM_ID: pd.Series(["a", "b"], dtype="str")})
    for items in (
        pd.DataFrame({schema.ITEM_ID: pd.Series([], dtype="str"), schema.CATEGORY: pd.Series([], dtype="str")}),
        pd.DataFrame({schema.ITEM_ID: pd.Series([], dtype="str")}),
    ):
        frame = dataset_frame(events, items)
        assert frame[schema.CATEGORY].astype("str").tolist() == [NO_CATEGORY, NO_CATEGORY]
        assert frame[MISSING_ITEM].astype("str").tolist() == ["a", "b"]


def test_row_fingerprints_are_equal_exactly_for_equal_rows() -> None:
    from recsys_lib.validation.expectations import row_fingerprints

    rows = pd.DataFrame(
        {
            "user": pd.array(["u1", "u1", "u1", None, None, "u2", "u1"], dtype="str"),
            "when": pd.to_datetime(["2026-01-01"] * 5 + ["2026-01-01", "2026-01-02"], utc=True),
            "price": [0.0, -0.0, 0.0, np.nan, float("nan"), 0.0, 0.0],
            "quantity": pd.array([1, 1, 1, None, None, 1, 1], dtype="Int64"),
        }
    )
    prints = row_fingerprints(rows, list(rows.columns))
    assert prints.dtype == np.uint64
    assert prints[0] == prints[1] == prints[2]  # -0.0 is 0.0
    assert prints[3] == prints[4]  # missing values equal each other, whatever the NaN's bits
    assert len({prints[0], prints[3], prints[5], prints[6]}) == 4  # another user, another day
    other = pd.DataFrame(
        {
            "category": pd.Categorical(["a", "a", None, None, "b"]),
            "flag": [True, True, False, False, True],
            "naive": pd.to_datetime(["2026-01-01", "2026-01-01", None, None, "2026-01-01"]),
            "anything": pd.Series([1, 1, None, None, "x"], dtype=object),
        }
    )
    prints = row_fingerprints(other, list(other.columns))
    assert prints[0] == prints[1] and prints[2] == prints[3] and len(set(prints[[0, 2, 4]])) == 3  # NaT, None
    crossed = pd.DataFrame({"a": ["x", "y", "x"], "b": ["y", "x", "y"]})
    prints = row_fingerprints(crossed, ["a", "b"])
    assert prints[0] == prints[2] != prints[1]  # values exchanged between the columns make another row
