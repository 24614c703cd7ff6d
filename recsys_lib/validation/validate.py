"""Run the data contract on canonical events and items with Great Expectations Core 1.x.

One call runs three GX suites (see expectations.py): ``events_rows`` on the events as read (shape
and row-level rules, COMPLETE results so the offending rows are known by index), then
``events_dataset`` on the rows that passed, impressions and clicks aside (referential integrity,
volume and drift against the previous snapshot's profile, freshness) and ``items`` on the
catalogue. Rows that break a row-level rule are split off with a ``reason`` column; their share
is itself a rule (``quarantine_share``).

With ``docs_dir`` the suites run as checkpoints of a file-backed GX context there and GX renders
its Data Docs HTML; without it an in-memory context is used and nothing is written. GX is
imported inside the functions, so importing recsys_lib stays fast.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys_lib import schema
from recsys_lib.config import ValidationConfig
from recsys_lib.errors import ConfigError
from recsys_lib.validation.expectations import (
    EVENTS,
    ITEMS,
    ROW_FINGERPRINT,
    Rule,
    dataset_frame,
    dataset_rules,
    duplicate_columns,
    events_rules,
    items_rules,
    profile,
    row_fingerprints,
)
from recsys_lib.validation.report import JsonScalar, RuleOutcome, ValidationReport

SUMMARY: dict[str, str | int] = {"result_format": "SUMMARY", "partial_unexpected_count": 20}
COMPLETE: dict[str, str | int] = {"result_format": "COMPLETE", "partial_unexpected_count": 20}
MAX_EXAMPLES = 5
MAX_EXAMPLE_CHARS = 60  # longer example strings are cut, so a 100 kB id does not flood a log
REASON = "reason"
#: Where a file-backed GX context keeps its rendered Data Docs site, relative to ``docs_dir``.
DOCS_SITE = Path("gx/uncommitted/data_docs/local_site")


@dataclass(frozen=True)
class Validation:
    """The outcome of :func:`validate_tables`: the report, the events that passed the row-level
    rules (index reset) and the rejected rows (original columns plus ``reason``)."""

    report: ValidationReport
    events: pd.DataFrame
    rejected: pd.DataFrame
    docs_site: Path | None = None  # the rendered Data Docs site, when docs_dir was given

    @property
    def success(self) -> bool:
        """Whether the run may go on: no ``fail`` rule broke (see :attr:`ValidationReport.success`)."""
        return self.report.success


def validate_tables(
    events: pd.DataFrame,
    items: pd.DataFrame,
    *,
    interval_end: datetime,
    interval_start: datetime | None = None,
    event_types: Sequence[str] = schema.EVENT_TYPES,
    settings: ValidationConfig | None = None,
    baseline: Mapping[str, Any] | None = None,
    check_freshness: bool = True,
    docs_dir: str | Path | None = None,
) -> Validation:
    """Check ``events`` and ``items`` against the canonical contract (DESIGN.md section 3).

    Event timestamps must lie in ``[interval_start, interval_end]`` (naive datetimes are UTC;
    ``interval_start`` None means no lower bound) and event types in ``event_types``;
    ``settings`` holds the thresholds and severities; ``baseline`` is the previous validated
    snapshot's profile (``report.profile``), None for no volume and drift checks. Never raises for
    bad data: every broken rule is an outcome in the report (see :func:`raise_for_failures`).
    Raises ConfigError if ``interval_start`` is after ``interval_end``.
    """
    settings = settings or ValidationConfig()
    end = _utc(interval_end)
    start = _utc(interval_start) if interval_start is not None else None
    if start is not None and start > end:
        raise ConfigError(f"interval_start {start.isoformat()} is after interval_end {end.isoformat()}")
    events = events.reset_index(drop=True)
    n_events = len(events)
    with _Runner(docs_dir) as runner:
        row_rules = events_rules(events.dtypes, interval_end=end, interval_start=start, event_types=event_types)
        checked = events
        if any(r.key[1] == ROW_FINGERPRINT for r in row_rules):  # no copy: the frame shares the columns
            checked = events.assign(**{ROW_FINGERPRINT: row_fingerprints(events, duplicate_columns(events.dtypes))})
        row_results = runner.run("events_rows", checked, row_rules, COMPLETE)
        del checked
        row_results = [(rule, _exact_duplicates(events, rule, result)) for rule, result in row_results]
        outcomes = [_outcome(rule, result) for rule, result in row_results]
        reasons = _reasons(events, row_results)
        rejected = events.loc[reasons.index].assign(**{REASON: reasons.astype("str")})
        clean = (
            events.drop(index=reasons.index).reset_index(drop=True) if len(reasons) else events
        )  # no copy if all pass
        del events  # one copy of the events from here on (the caller's, if it keeps one, aside)
        outcomes.append(_quarantine_share(len(rejected), n_events, settings))

        shape_ok = all(o.success for o in outcomes if o.severity == "fail")
        summary: dict[str, Any] = {}
        if shape_ok and schema.ITEM_ID in items.columns and len(clean):
            frame = dataset_frame(_behaviour(clean), items)
            rules = dataset_rules(
                frame, settings=settings, interval_end=end, baseline=baseline, check_freshness=check_freshness
            )
            outcomes += [_outcome(rule, res) for rule, res in runner.run("events_dataset", frame, rules, SUMMARY)]
            summary = profile(frame)
        outcomes += [
            _outcome(r, res) for r, res in runner.run("items", items, items_rules(items.dtypes, settings), SUMMARY)
        ]

    report = ValidationReport(
        success=all(o.success for o in outcomes if o.severity == "fail"),
        outcomes=outcomes,
        row_counts={EVENTS: n_events, ITEMS: len(items)},
        quarantined=len(rejected),
        profile=summary,
    )
    site = Path(docs_dir) / DOCS_SITE if docs_dir is not None else None
    return Validation(report, clean, rejected.reset_index(drop=True), site)


def _behaviour(events: pd.DataFrame) -> pd.DataFrame:
    """The shoppers' own events: without impressions and clicks, whose volume and mix follow our
    placements (a shop that starts logging impressions has not changed its shoppers), so volume,
    drift, freshness and catalogue checks describe behaviour. No copy when there are none."""
    outcome = events[schema.EVENT_TYPE].isin(schema.OUTCOME_EVENT_TYPES).to_numpy()
    return events[~outcome].reset_index(drop=True) if outcome.any() else events


def _utc(moment: datetime) -> pd.Timestamp:
    ts = pd.Timestamp(moment)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


class _Runner:
    """Runs one suite on one frame; with ``docs_dir``, as a checkpoint that updates Data Docs."""

    def __init__(self, docs_dir: str | Path | None):
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.context: Any
        if docs_dir is None:
            self.context = gx.get_context(mode="ephemeral")
        else:
            self.context = gx.get_context(mode="file", project_root_dir=str(docs_dir))
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.docs = docs_dir is not None
        self.source = self.context.data_sources.add_or_update_pandas("snapshot")

    def run(
        self, name: str, frame: pd.DataFrame, rules: list[Rule], result_format: dict[str, str | int]
    ) -> list[tuple[Rule, Any]]:
        """Each rule with its GX ExpectationValidationResult, in rule order."""
        import great_expectations as gx

        if name in self.source.get_asset_names():
            self.source.delete_asset(name)
        batch = self.source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(f"{name}_whole")
        suite = self.context.suites.add_or_update(
            gx.ExpectationSuite(name=name, expectations=[_to_gx(r) for r in rules])
        )
        definition = self.context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=f"{name}_check", data=batch, suite=suite)
        )
        result: Any
        if self.docs:
            checkpoint = self.context.checkpoints.add_or_update(
                gx.Checkpoint(
                    name=f"{name}_checkpoint",
                    validation_definitions=[definition],
                    actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs")],
                    result_format=result_format,
                )
            )
            [result] = checkpoint.run(batch_parameters={"dataframe": frame}).run_results.values()
        else:
            result = definition.run(batch_parameters={"dataframe": frame}, result_format=result_format)
        self._forget(result)
        by_key = {(r.expectation_config.type, r.expectation_config.kwargs.get("column")): r for r in result.results}
        return [(rule, by_key[rule.key]) for rule in rules]

    def _forget(self, result: Any) -> None:
        """Drop what GX's execution engine cached for the batch just validated, so a suite's frame
        and per-row metrics are freed once its results are in (GX would keep them until the context
        goes): the batch data, and the metric cache, which holds every per-row Series a rule
        computed (value lengths, condition masks: ~45 bytes per event after the row-level suite)."""
        engine = self.source.get_execution_engine()
        manager = getattr(engine, "batch_manager", None)
        if manager is not None:
            manager.reset_batch_cache()
            cached = getattr(manager, "_batch_data_cache", None)  # not cleared by reset_batch_cache in GX 1.x
            if isinstance(cached, dict):
                cached.clear()
        metrics = getattr(engine, "_metric_cache", None)
        if isinstance(metrics, dict):
            metrics.clear()

    def __enter__(self) -> _Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        """Drop the data source, and with it every frame GX cached: GX keeps its last context in a
        module-level project manager, whose data source's execution engine holds each validated
        DataFrame (a 10M-event snapshot held ~300 bytes per event through every later stage)."""
        self.context.data_sources.delete(self.source.name)


def _to_gx(rule: Rule) -> Any:
    """The GX expectation object of ``rule`` (``expect_column_to_exist`` -> ExpectColumnToExist)."""
    import great_expectations.expectations as gxe

    wanted = rule.expectation.replace("_", "").lower()
    cls = next(getattr(gxe, name) for name in dir(gxe) if name.lower() == wanted)
    kwargs = dict(rule.kwargs)
    if rule.column is not None:
        kwargs["column"] = rule.column
    return cls(**kwargs)


def _exact_duplicates(events: pd.DataFrame, rule: Rule, result: Any) -> Any:
    """``result`` of the exact-duplicate rule made exact: GX flagged the rows whose fingerprints
    repeat; only those that repeat by value stay flagged (every copy, as GX counts them), and the
    examples are the rows themselves. Other rules' results pass through."""
    if rule.check != "exact_duplicate" or result.success or not result.result:
        return result
    index = pd.Index(result.result.get("unexpected_index_list") or []).sort_values()
    rows = events.loc[index, duplicate_columns(events.dtypes)]
    copies = rows.duplicated(keep=False).to_numpy()
    index, rows = index[copies], rows[copies]
    result.success = not len(index)
    for stale in ("unexpected_list", "unexpected_percent", "unexpected_percent_total", "partial_unexpected_counts"):
        result.result.pop(stale, None)  # fingerprint figures (Data Docs, rendered already, show GX's own)
    result.result.pop("partial_unexpected_index_list", None)
    result.result.pop("unexpected_index_query", None)
    result.result["unexpected_index_list"] = index.tolist()
    result.result["unexpected_count"] = len(index)
    result.result["partial_unexpected_list"] = rows.head(20).to_dict("records")  # {column: value} per row
    return result


def _reasons(events: pd.DataFrame, results: list[tuple[Rule, Any]]) -> pd.Series:
    """Per rejected row (by index), the checks it broke joined by "; " (sorted by row)."""
    broken: dict[int, list[str]] = {}
    for rule, result in results:
        if rule.severity != "quarantine" or result.success:
            continue
        index = pd.Index((result.result or {}).get("unexpected_index_list") or [])
        if rule.check == "exact_duplicate":  # every copy is flagged; the first one is kept (first among the
            index = index.sort_values()  # flagged rows: they hold every copy, first copies first)
            flagged = events.loc[index, duplicate_columns(events.dtypes)]
            index = index[flagged.duplicated(keep="first").to_numpy()]
        reason = f"{rule.check} ({rule.column or 'row'}: expected {rule.expected})"
        for row in index:
            broken.setdefault(int(row), []).append(reason)
    return pd.Series({row: "; ".join(r) for row, r in sorted(broken.items())}, dtype="str")


def _quarantine_share(rejected: int, total: int, settings: ValidationConfig) -> RuleOutcome:
    share = rejected / total if total else 0.0
    limit = settings.max_quarantine_share
    success = share <= limit
    return RuleOutcome(
        table=EVENTS,
        rule="quarantine_share",
        column=None,
        success=success,
        unexpected_count=0,
        examples=[],
        detail=None
        if success
        else f"{rejected} of {total} rows ({share:.1%}) broke row-level rules, above "
        f"validation.max_quarantine_share {limit:.1%}",
        severity=settings.severity_of("quarantine_share"),
        check="quarantine_share",
    )


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
        severity=rule.severity,
        check=rule.check,
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


def json_value(value: Any) -> JsonScalar:
    """A JSON scalar for an example value: timestamps as ISO strings, NaN/NA/NaT as None, long
    strings cut to their first 60 characters and their length."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str) and len(value) > MAX_EXAMPLE_CHARS:
        return f"{value[:MAX_EXAMPLE_CHARS]}... ({len(value)} characters)"
    if isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):  # the exact-duplicate rule reports each row as {column: value}
        return str({k: json_value(v) for k, v in value.items()})
    return str(value)


def distinct_examples(values: Sequence[Any], limit: int = MAX_EXAMPLES) -> list[JsonScalar]:
    """Up to ``limit`` distinct values of ``values`` as JSON scalars, in first-seen order."""
    examples: list[JsonScalar] = []
    for value in values:
        converted = json_value(value)
        if converted not in examples:
            examples.append(converted)
            if len(examples) == limit:
                break
    return examples
