"""The rules of the data contract (DESIGN.md section 3) as plain data, one list per table.

Each :class:`Rule` names a Great Expectations expectation type and its arguments; validate.py
turns them into GX objects, so this module never imports GX. The rule lists adapt to the frame
they will check: a missing column gets only its ``expect_column_to_exist`` rule (a clear failure
instead of a crash), and a range rule is added only when the column's dtype can be compared
(a wrong dtype is already reported by the type rule).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from recsys_lib import schema

EVENTS, ITEMS = "events", "items"

#: GX ``type_`` name per schema dtype. On pandas, GX compares ``dtype.type``: StringDtype -> str,
#: a tz-aware datetime -> Timestamp, Int64 -> int64 (so nullable and numpy ints both pass).
GX_TYPE_NAMES: dict[str, str] = {
    "str": "str",
    "datetime64[us, UTC]": "Timestamp",
    "Int64": "int64",
    "float64": "float64",
    "bool": "bool",
}


@dataclass(frozen=True)
class Rule:
    """One expectation on one table; ``expected`` says in words what passing means."""

    table: str
    expectation: str  # GX expectation type, e.g. "expect_column_values_to_not_be_null"
    column: str | None
    expected: str
    kwargs: dict[str, Any] = field(default_factory=dict)  # GX arguments besides ``column``

    @property
    def key(self) -> tuple[str, str | None]:
        """Identifies the rule within its table's suite (one rule per expectation and column)."""
        return self.expectation, self.column


def _column_rules(
    table: str, dtypes: Mapping[str, Any], required: Sequence[str], expected_dtypes: Mapping[str, str]
) -> list[Rule]:
    """Presence and not-null for required columns, then the dtype of every schema column present."""
    present = sorted(map(str, dtypes.keys()))
    rules = []
    for column in required:
        rules.append(
            Rule(table, "expect_column_to_exist", column, f"the column to exist; the table has columns {present}")
        )
        if column in dtypes:
            rules.append(Rule(table, "expect_column_values_to_not_be_null", column, "no null values"))
    for column, dtype in expected_dtypes.items():
        if column in dtypes:
            gx_type = GX_TYPE_NAMES[dtype]
            rules.append(
                Rule(
                    table,
                    "expect_column_values_to_be_of_type",
                    column,
                    f"dtype {dtype} ({gx_type})",
                    {"type_": gx_type},
                )
            )
    return rules


def _is_number(dtype: Any) -> bool:
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def _at_least(table: str, column: str, minimum: float) -> Rule:
    return Rule(
        table,
        "expect_column_values_to_be_between",
        column,
        f"values >= {minimum} (nulls allowed)",
        {"min_value": minimum},
    )


def events_rules(
    dtypes: Mapping[str, Any],
    *,
    interval_end: pd.Timestamp,
    interval_start: pd.Timestamp | None = None,
    event_types: Sequence[str] = schema.EVENT_TYPES,
) -> list[Rule]:
    """Rules for the events table whose column dtypes are ``dtypes`` (``frame.dtypes``)."""
    rules = [Rule(EVENTS, "expect_table_row_count_to_be_between", None, "at least 1 row", {"min_value": 1})]
    rules += _column_rules(EVENTS, dtypes, schema.EVENTS_REQUIRED, schema.EVENTS_DTYPES)
    if schema.EVENT_TYPE in dtypes:
        allowed = list(event_types)
        rules.append(
            Rule(
                EVENTS,
                "expect_column_values_to_be_in_set",
                schema.EVENT_TYPE,
                f"one of {allowed}",
                {"value_set": allowed},
            )
        )
    if isinstance(dtypes.get(schema.TIMESTAMP), pd.DatetimeTZDtype):
        bounds = {"max_value": interval_end.to_pydatetime()}
        expected = f"timestamps <= {interval_end.isoformat()}"
        if interval_start is not None:
            bounds["min_value"] = interval_start.to_pydatetime()
            expected = f"timestamps in [{interval_start.isoformat()}, {interval_end.isoformat()}]"
        rules.append(Rule(EVENTS, "expect_column_values_to_be_between", schema.TIMESTAMP, expected, bounds))
    if _is_number(dtypes.get(schema.QUANTITY)):
        rules.append(_at_least(EVENTS, schema.QUANTITY, 1))
    if _is_number(dtypes.get(schema.PRICE)):
        rules.append(_at_least(EVENTS, schema.PRICE, 0))
    return rules


def items_rules(dtypes: Mapping[str, Any]) -> list[Rule]:
    """Rules for the items (catalogue) table whose column dtypes are ``dtypes``."""
    rules = _column_rules(ITEMS, dtypes, schema.ITEMS_REQUIRED, schema.ITEMS_DTYPES)
    if schema.ITEM_ID in dtypes:
        rules.append(Rule(ITEMS, "expect_column_values_to_be_unique", schema.ITEM_ID, "each item id once"))
    if _is_number(dtypes.get(schema.PRICE)):
        rules.append(_at_least(ITEMS, schema.PRICE, 0))
    return rules
