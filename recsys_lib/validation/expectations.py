"""The rules of the data contract (DESIGN.md section 3) as plain data, one list per suite.

Each :class:`Rule` names a Great Expectations expectation type, its arguments and what breaking it
means (its ``severity``): ``fail`` stops the run, ``warn`` is reported and logged, ``quarantine``
moves the offending rows to ``quarantine/`` with a reason. validate.py turns rules into GX
objects, so this module never imports GX. Three suites:

- ``events_rows`` (:func:`events_rules`): the table's shape (row count, columns, dtypes; ``fail``)
  and the row-level rules (null ids, unknown event type, timestamp outside the interval, quantity,
  price, exact duplicates; ``quarantine``);
- ``events_dataset`` (:func:`dataset_rules`): on the rows that passed, referential integrity,
  volume and mix drift against the previous validated snapshot, and freshness;
- ``items`` (:func:`items_rules`): the catalogue.

The rule lists adapt to the frame they will check: a missing column gets only its
``expect_column_to_exist`` rule (a clear failure instead of a crash), and a range rule is added
only when the column's dtype can be compared (a wrong dtype is already reported by the type rule).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recsys_lib import schema
from recsys_lib.config import CheckName, ValidationConfig

EVENTS, ITEMS = "events", "items"
Severity = Literal["fail", "warn", "quarantine"]

#: Longest id (user, item, session) accepted; longer values are rows from a broken feed.
MAX_ID_LENGTH = 256
#: Derived columns of the events_dataset suite (see :func:`dataset_frame`).
MISSING_ITEM = "item_id_missing_from_catalogue"
#: Derived column of the events_rows suite: one 64-bit hash per row (see :func:`row_fingerprints`).
ROW_FINGERPRINT = "row_fingerprint"
NO_CATEGORY = "(none)"
#: The categories a profile keeps; the rest are summed into "(other)".
MAX_PROFILE_CATEGORIES = 1000
#: Added to every share of the previous mix before the KL divergence, so a new value costs
#: ``share x ln(share / 1e-4)`` instead of infinity (a new category with 5% of events: 0.31 nats).
DRIFT_SMOOTHING = 1e-4

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
    """One expectation on one table; ``expected`` says in words what passing means; ``check``
    names the rule for people (quarantine reasons, severity overrides)."""

    table: str
    expectation: str  # GX expectation type, e.g. "expect_column_values_to_not_be_null"
    column: str | None
    expected: str
    kwargs: dict[str, Any] = field(default_factory=dict)  # GX arguments besides ``column``
    severity: Severity = "fail"
    check: str | None = None

    @property
    def key(self) -> tuple[str, str | None]:
        """Identifies the rule within its suite (one rule per expectation and column; a rule that
        reports on rows but runs on a derived column names that column in ``kwargs``)."""
        return self.expectation, self.column if self.column is not None else self.kwargs.get("column")


def _column_rules(
    table: str, dtypes: Mapping[str, Any], required: Sequence[str], expected_dtypes: Mapping[str, str]
) -> list[Rule]:
    """Presence of required columns, then the dtype of every schema column present."""
    present = sorted(map(str, dtypes.keys()))
    rules = [
        Rule(table, "expect_column_to_exist", c, f"the column to exist; the table has columns {present}")
        for c in required
    ]
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


def _at_least(table: str, column: str, minimum: float, severity: Severity, check: str) -> Rule:
    return Rule(
        table,
        "expect_column_values_to_be_between",
        column,
        f"values >= {minimum} (nulls allowed)",
        {"min_value": minimum},
        severity,
        check,
    )


def _short_ids(table: str, column: str, severity: Severity) -> Rule:
    return Rule(
        table,
        "expect_column_value_lengths_to_be_between",
        column,
        f"at most {MAX_ID_LENGTH} characters",
        {"max_value": MAX_ID_LENGTH},
        severity,
        f"{column}_too_long",
    )


def events_rules(
    dtypes: Mapping[str, Any],
    *,
    interval_end: pd.Timestamp,
    interval_start: pd.Timestamp | None = None,
    event_types: Sequence[str] = schema.EVENT_TYPES,
) -> list[Rule]:
    """The events_rows suite for an events table whose column dtypes are ``dtypes``."""
    rules = [Rule(EVENTS, "expect_table_row_count_to_be_between", None, "at least 1 row", {"min_value": 1})]
    rules += _column_rules(EVENTS, dtypes, schema.EVENTS_REQUIRED, schema.EVENTS_DTYPES)
    quarantine: Severity = "quarantine"
    for column in schema.EVENTS_REQUIRED:
        if column in dtypes:
            rules.append(
                Rule(
                    EVENTS,
                    "expect_column_values_to_not_be_null",
                    column,
                    "no null values",
                    {},
                    quarantine,
                    f"null_{column}",
                )
            )
    for column in (schema.USER_ID, schema.ITEM_ID, schema.SESSION_ID):
        if pd.api.types.is_string_dtype(dtypes.get(column, "int64")):
            rules.append(_short_ids(EVENTS, column, quarantine))
    if schema.EVENT_TYPE in dtypes:
        allowed = list(event_types)
        rules.append(
            Rule(
                EVENTS,
                "expect_column_values_to_be_in_set",
                schema.EVENT_TYPE,
                f"one of {allowed}",
                {"value_set": allowed},
                quarantine,
                "unknown_event_type",
            )
        )
    if isinstance(dtypes.get(schema.TIMESTAMP), pd.DatetimeTZDtype):
        bounds = {"max_value": interval_end.to_pydatetime()}
        expected = f"timestamps <= {interval_end.isoformat()}"
        if interval_start is not None:
            bounds["min_value"] = interval_start.to_pydatetime()
            expected = f"timestamps in [{interval_start.isoformat()}, {interval_end.isoformat()}]"
        rules.append(
            Rule(
                EVENTS,
                "expect_column_values_to_be_between",
                schema.TIMESTAMP,
                expected,
                bounds,
                quarantine,
                "timestamp_outside_interval",
            )
        )
    if _is_number(dtypes.get(schema.QUANTITY)):
        rules.append(_at_least(EVENTS, schema.QUANTITY, 1, quarantine, "quantity_below_1"))
    if _is_number(dtypes.get(schema.PRICE)):
        rules.append(_at_least(EVENTS, schema.PRICE, 0, quarantine, "negative_price"))
    if set(schema.EVENTS_REQUIRED) <= set(duplicate_columns(dtypes)):
        rules.append(
            Rule(
                EVENTS,
                "expect_column_values_to_be_unique",
                None,  # reported per row; runs on the fingerprint column
                "no exact duplicate rows (the first copy is kept)",
                {"column": ROW_FINGERPRINT},
                quarantine,
                "exact_duplicate",
            )
        )
    return rules


def duplicate_columns(dtypes: Mapping[str, Any]) -> list[str]:
    """The columns two events must agree on to be exact duplicates: every schema column present."""
    return [c for c in schema.EVENTS_DTYPES if c in dtypes]


_SPLITMIX = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))
_GOLDEN = 0x9E3779B97F4A7C15


def row_fingerprints(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """A uint64 hash of each row's ``columns``: equal rows get equal fingerprints, and different
    rows almost never do (64 bits: about one colliding pair in 10^4 tables of 50M rows; the rows a
    fingerprint flags are compared by value afterwards, so a collision quarantines nothing).

    The exact-duplicate rule runs on this column: GX's compound-uniqueness rule factorises every
    column into int64 codes and hashes their combination, ~160 bytes per event at its peak; this
    is ~30 (one code column at a time: dictionary codes for strings, the int64 of a timestamp, the
    bits of a float with -0.0 and NaN made one value)."""
    out = np.full(len(frame), np.uint64(len(columns)), dtype=np.uint64)
    for j, column in enumerate(columns):
        salt = np.uint64(_GOLDEN * (j + 1) % 2**64)  # a different offset per column: order matters
        mixed = _codes(frame[column]).view(np.uint64) + salt  # a new array
        _mix(mixed)
        out ^= mixed
        _mix(out)
    return out


def _codes(column: pd.Series) -> np.ndarray:
    """One int64 per row, equal exactly where the values are equal (missing values equal each other)."""
    values = column.array
    if isinstance(values, pd.arrays.DatetimeArray):  # no hash table for ~one distinct value per event
        return np.asarray(values.asi8, dtype=np.int64)
    if pd.api.types.is_float_dtype(column.dtype):
        floats: np.ndarray = column.to_numpy(np.float64, na_value=np.nan) + 0.0  # -0.0 == 0.0
        floats[np.isnan(floats)] = np.nan  # one NaN bit pattern
        return floats.view(np.int64)
    codes, _ = pd.factorize(column, use_na_sentinel=True)  # strings: Arrow's dictionary encoding
    return np.asarray(codes, dtype=np.int64)


def _mix(x: np.ndarray) -> None:
    """splitmix64's finaliser, in place on a uint64 array (wrapping arithmetic)."""
    x ^= x >> np.uint64(30)
    x *= _SPLITMIX[0]
    x ^= x >> np.uint64(27)
    x *= _SPLITMIX[1]
    x ^= x >> np.uint64(31)


def items_rules(dtypes: Mapping[str, Any], settings: ValidationConfig | None = None) -> list[Rule]:
    """The items suite for a catalogue whose column dtypes are ``dtypes``."""
    settings = settings or ValidationConfig()
    rules = _column_rules(ITEMS, dtypes, schema.ITEMS_REQUIRED, schema.ITEMS_DTYPES)
    if schema.ITEM_ID in dtypes:
        rules.append(Rule(ITEMS, "expect_column_values_to_not_be_null", schema.ITEM_ID, "no null values"))
        rules.append(Rule(ITEMS, "expect_column_values_to_be_unique", schema.ITEM_ID, "each item id once"))
        if pd.api.types.is_string_dtype(dtypes[schema.ITEM_ID]):
            rules.append(_short_ids(ITEMS, schema.ITEM_ID, "fail"))
    if _is_number(dtypes.get(schema.PRICE)):
        rules.append(_at_least(ITEMS, schema.PRICE, 0, "fail", "negative_price"))
    if schema.CATEGORY in dtypes:
        share = settings.min_categorised_share
        rules.append(
            Rule(
                ITEMS,
                "expect_column_values_to_not_be_null",
                schema.CATEGORY,
                f"a category on at least {share:.0%} of items",
                {"mostly": share},
                settings.severity_of("catalogue_categories"),
                "catalogue_categories",
            )
        )
    return rules


def dataset_frame(events: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """``events`` plus the derived columns the dataset rules check: ``category`` (the item's, or
    "(none)") and ``item_id_missing_from_catalogue`` (the item id where it is not in ``items``,
    else null, so GX's examples are the missing ids). Both are categorical: one small code per
    event, never a string (or Python object) per event."""
    catalogue = items.drop_duplicates(schema.ITEM_ID)
    ids = pa.array(events[schema.ITEM_ID].astype("str").array)  # no copy for Arrow-backed ids (may be chunked)
    catalogue_ids = pa.array(catalogue[schema.ITEM_ID].astype("str").array)
    if isinstance(catalogue_ids, pa.ChunkedArray):  # a value set must be one array
        catalogue_ids = catalogue_ids.combine_chunks()
    position = pc.index_in(ids, value_set=catalogue_ids)
    position = position.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)  # -1: not in the catalogue
    known = position >= 0
    if schema.CATEGORY in catalogue:
        names, per_item = pd.factorize(catalogue[schema.CATEGORY].fillna(NO_CATEGORY).astype("str"))
    else:
        names, per_item = np.zeros(len(catalogue), dtype=np.int64), pd.Index([NO_CATEGORY])
    none = per_item.get_loc(NO_CATEGORY) if NO_CATEGORY in per_item else len(per_item)
    per_item = per_item if NO_CATEGORY in per_item else per_item.append(pd.Index([NO_CATEGORY]))
    codes = np.append(names, none)[position]  # -1 (not in the catalogue) takes the appended "(none)"
    missing_codes, missing_ids = pd.factorize(events[schema.ITEM_ID][~known])
    missing = np.full(len(events), -1, dtype=np.int64)
    missing[~known] = missing_codes
    return events.assign(
        **{
            schema.CATEGORY: pd.Categorical.from_codes(codes, categories=per_item),
            MISSING_ITEM: pd.Categorical.from_codes(missing, categories=missing_ids),
        }
    )


def profile(frame: pd.DataFrame) -> dict[str, Any]:
    """What the next run compares against: row count and event-type and category shares of a
    :func:`dataset_frame`."""
    out: dict[str, Any] = {"events": len(frame)}
    for column in (schema.EVENT_TYPE, schema.CATEGORY):
        shares = frame[column].value_counts(normalize=True, dropna=False)
        shares = shares[shares > 0]  # a categorical column also counts the categories no event has
        if len(shares) > MAX_PROFILE_CATEGORIES:
            shares = pd.concat(
                [
                    shares.iloc[:MAX_PROFILE_CATEGORIES],
                    pd.Series({"(other)": shares.iloc[MAX_PROFILE_CATEGORIES:].sum()}),
                ]
            )
        out[column] = {str(k): float(v) for k, v in shares.items()}
    return out


def drift_partition(previous: Mapping[str, float], observed: Sequence[str]) -> dict[str, list[str] | list[float]]:
    """GX ``partition_object`` of the previous mix over every previous or observed value, each
    share smoothed by :data:`DRIFT_SMOOTHING` and the whole renormalised."""
    values = sorted(set(previous) | {str(v) for v in observed})
    weights = [previous.get(v, 0.0) + DRIFT_SMOOTHING for v in values]
    total = sum(weights)
    return {"values": values, "weights": [w / total for w in weights]}


def dataset_rules(
    frame: pd.DataFrame,
    *,
    settings: ValidationConfig,
    interval_end: pd.Timestamp,
    baseline: Mapping[str, Any] | None = None,
    check_freshness: bool = True,
) -> list[Rule]:
    """The events_dataset suite for a :func:`dataset_frame` of the rows that passed the row rules.

    ``baseline`` is the :func:`profile` of the previous validated snapshot (None on a first run:
    no volume or drift check).
    """
    rules = [
        Rule(
            EVENTS,
            "expect_column_values_to_be_null",
            MISSING_ITEM,
            f"at least {settings.min_catalogue_share:.0%} of events name an item in the catalogue",
            {"mostly": settings.min_catalogue_share},
            settings.severity_of("referential_integrity"),
            "referential_integrity",
        )
    ]
    if baseline:
        low, high = settings.volume_band
        previous = int(baseline["events"])
        rules.append(
            Rule(
                EVENTS,
                "expect_table_row_count_to_be_between",
                None,
                f"{low:g}x to {high:g}x the previous snapshot's {previous} events",
                {"min_value": int(previous * low), "max_value": int(previous * high) + 1},
                settings.severity_of("volume"),
                "volume",
            )
        )
        drift_checks: tuple[tuple[str, CheckName], ...] = (
            (schema.EVENT_TYPE, "event_type_drift"),
            (schema.CATEGORY, "category_drift"),
        )
        for column, check in drift_checks:
            if baseline.get(column):
                rules.append(
                    Rule(
                        EVENTS,
                        "expect_column_kl_divergence_to_be_less_than",
                        column,
                        f"KL divergence from the previous snapshot's {column} mix < {settings.max_drift_kl}",
                        {
                            "partition_object": drift_partition(baseline[column], frame[column].unique().tolist()),
                            "threshold": settings.max_drift_kl,
                        },
                        settings.severity_of(check),
                        check,
                    )
                )
    if check_freshness and settings.freshness_hours is not None:
        oldest = interval_end - timedelta(hours=settings.freshness_hours)
        rules.append(
            Rule(
                EVENTS,
                "expect_column_max_to_be_between",
                schema.TIMESTAMP,
                f"newest event after {oldest.isoformat()} (validation.freshness_hours={settings.freshness_hours:g})",
                {"min_value": oldest.to_pydatetime(), "max_value": interval_end.to_pydatetime()},
                settings.severity_of("freshness"),
                "freshness",
            )
        )
    return rules
