"""Run the data-contract rules on canonical events and items with Great Expectations Core 1.x.

Each call builds an in-memory (ephemeral) GX context with one suite per table and runs it on the
frames as given; nothing is written anywhere. GX is imported inside the functions, so importing
recsys_lib stays fast. Results use GX's SUMMARY format: counts plus the first 20 unexpected
values (never the full unexpected lists), which keeps 400k-row tables to about a second.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from recsys_lib import schema
from recsys_lib.errors import ConfigError
from recsys_lib.validation.expectations import EVENTS, ITEMS, Rule, events_rules, items_rules
from recsys_lib.validation.report import RuleOutcome, ValidationReport

RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 20}
MAX_EXAMPLES = 5


def validate_tables(
    events: pd.DataFrame,
    items: pd.DataFrame,
    *,
    interval_end: datetime,
    interval_start: datetime | None = None,
    event_types: Sequence[str] = schema.EVENT_TYPES,
) -> ValidationReport:
    """Check ``events`` and ``items`` against the canonical contract (DESIGN.md section 3).

    Event timestamps must lie in ``[interval_start, interval_end]`` (naive datetimes are UTC;
    ``interval_start`` None means no lower bound) and event types in ``event_types``. Never
    raises for bad data: every broken rule is a failed outcome in the report (see
    :func:`raise_for_failures`). Raises ConfigError if ``interval_start`` is after ``interval_end``.
    """
    end = _utc(interval_end)
    start = _utc(interval_start) if interval_start is not None else None
    if start is not None and start > end:
        raise ConfigError(f"interval_start {start.isoformat()} is after interval_end {end.isoformat()}")
    context = _ephemeral_context()
    outcomes = _run_rules(
        context, events, events_rules(events.dtypes, interval_end=end, interval_start=start, event_types=event_types)
    )
    outcomes += _run_rules(context, items, items_rules(items.dtypes))
    return ValidationReport(
        success=all(o.success for o in outcomes),
        outcomes=outcomes,
        row_counts={EVENTS: len(events), ITEMS: len(items)},
    )


def _utc(moment: datetime) -> pd.Timestamp:
    ts = pd.Timestamp(moment)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _ephemeral_context() -> Any:
    """An in-memory GX context without progress bars."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _to_gx(rule: Rule) -> Any:
    """The GX expectation object of ``rule`` (``expect_column_to_exist`` -> ExpectColumnToExist)."""
    import great_expectations.expectations as gxe

    cls = getattr(gxe, "".join(part.capitalize() for part in rule.expectation.split("_")))
    kwargs = dict(rule.kwargs)
    if rule.column is not None:
        kwargs["column"] = rule.column
    return cls(**kwargs)


def _run_rules(context: Any, frame: pd.DataFrame, rules: list[Rule]) -> list[RuleOutcome]:
    """Run ``rules`` (all for one table) as one GX suite on ``frame``; outcomes in rule order."""
    import great_expectations as gx

    table = rules[0].table
    batch = (
        context.data_sources.add_pandas(f"{table}_source")
        .add_dataframe_asset(table)
        .add_batch_definition_whole_dataframe(f"{table}_whole")
    )
    suite = context.suites.add(gx.ExpectationSuite(name=f"{table}_contract", expectations=[_to_gx(r) for r in rules]))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{table}_check", data=batch, suite=suite)
    )
    result = definition.run(batch_parameters={"dataframe": frame}, result_format=RESULT_FORMAT)
    by_key = {(r.expectation_config.type, r.expectation_config.kwargs.get("column")): r for r in result.results}
    return [_outcome(rule, by_key[rule.key]) for rule in rules]


def _outcome(rule: Rule, result: Any) -> RuleOutcome:
    """Our outcome from one GX ExpectationValidationResult."""
    summary = result.result or {}
    success = bool(result.success)
    detail = None
    if not success:
        observed = summary.get("observed_value")
        detail = f"expected {rule.expected}"
        detail += f", observed {json_value(observed)!r}" if observed is not None else ""
        error = _exception_message(result.exception_info)
        detail += f"; GX could not evaluate it: {error}" if error else ""
    return RuleOutcome(
        table=rule.table,
        rule=rule.expectation,
        column=rule.column,
        success=success,
        unexpected_count=int(summary.get("unexpected_count") or 0),
        examples=distinct_examples(summary.get("partial_unexpected_list") or []),
        detail=detail,
    )


def _exception_message(info: Any) -> str | None:
    """The first exception message in GX's exception_info (flat, or keyed by metric)."""
    if not isinstance(info, dict):
        return None
    candidates = [info, *(v for v in info.values() if isinstance(v, dict))]
    for candidate in candidates:
        if candidate.get("raised_exception"):
            return str(candidate.get("exception_message") or "unknown error")
    return None


def json_value(value: Any) -> str | int | float | bool | None:
    """A JSON scalar for an example value: timestamps as ISO strings, NaN/NA/NaT as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)


def distinct_examples(values: Sequence[Any], limit: int = MAX_EXAMPLES) -> list:
    """Up to ``limit`` distinct values of ``values`` as JSON scalars, in first-seen order."""
    examples: list = []
    for value in values:
        converted = json_value(value)
        if converted not in examples:
            examples.append(converted)
            if len(examples) == limit:
                break
    return examples
