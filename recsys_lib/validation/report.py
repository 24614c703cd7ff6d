"""Validation outcomes: one RuleOutcome per checked rule, a report per run, an error that lists failures.

Plain data, no Great Expectations types: reports are JSON-serialisable (``report.json``) and the
error message names each failed rule, its column and example values, one rule per line.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from recsys_lib.errors import DataValidationError

JsonScalar = str | int | float | bool | None
"""A value JSON holds as is: what a rule's examples are converted to."""


@dataclass(frozen=True)
class RuleOutcome:
    """The result of one rule on one table.

    ``rule`` is the GX expectation type (``expect_column_values_to_not_be_null``) or, for checks
    GX does not express, our own name (``quarantine_share``); ``column`` is None for table-level
    rules. ``examples`` holds up to 5 distinct unexpected values as JSON scalars (timestamps as
    ISO strings, nulls as None). ``detail`` says what was expected and, for rules without per-row
    values (column present, dtype, row count), what was observed. ``severity`` is what breaking
    the rule does (fail, warn or quarantine); ``check`` is the rule's short name, if it has one.
    """

    table: str
    rule: str
    column: str | None
    success: bool
    unexpected_count: int
    examples: list[JsonScalar]
    detail: str | None = None
    severity: str = "fail"
    check: str | None = None

    def describe(self) -> str:
        """One line: ``unknown_event_type: events.event_type expect_column_values_to_be_in_set: 3
        unexpected, e.g. [...]`` (the check name first when the rule has one)."""
        where = f"{self.table}.{self.column}" if self.column else self.table
        if self.unexpected_count:
            summary = f"{self.unexpected_count} unexpected, e.g. {self.examples!r}"
            summary += f" ({self.detail})" if self.detail and self.severity != "quarantine" else ""
        else:
            summary = self.detail or ("passed" if self.success else "failed")
        head = f"{self.check}: " if self.check else ""
        return f"{head}{where} {self.rule}: {summary}"

    def to_dict(self) -> dict[str, Any]:
        """Every field as a JSON-serialisable dict (``examples`` are JSON scalars already)."""
        return asdict(self)


@dataclass(frozen=True)
class ValidationReport:
    """Every rule checked on the events and items tables, and whether the run may go on.

    ``success`` is False when a ``fail`` rule broke (the quarantine share is one of them);
    broken ``warn`` rules and quarantined rows alone keep it True.
    """

    success: bool
    outcomes: list[RuleOutcome]
    row_counts: dict[str, int]  # {"events": n, "items": m} as read, before quarantine
    quarantined: int = 0
    profile: dict[str, Any] = field(default_factory=dict)

    def failures(self) -> list[RuleOutcome]:
        """The outcomes of the ``fail`` rules that broke, in check order."""
        return [o for o in self.outcomes if not o.success and o.severity == "fail"]

    def warnings(self) -> list[RuleOutcome]:
        """The outcomes of the ``warn`` rules that broke: logged and reported, but the run goes on."""
        return [o for o in self.outcomes if not o.success and o.severity == "warn"]

    def quarantine_rules(self) -> list[RuleOutcome]:
        """The row-level rules that sent rows to quarantine."""
        return [o for o in self.outcomes if not o.success and o.severity == "quarantine"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form for ``report.json``."""
        return {
            "success": self.success,
            "row_counts": dict(self.row_counts),
            "quarantined": self.quarantined,
            "failed_rules": len(self.failures()),
            "warnings": len(self.warnings()),
            "profile": self.profile,
            "outcomes": [o.to_dict() for o in self.outcomes],
        }


def raise_for_failures(report: ValidationReport, report_uri: str | None = None) -> None:
    """Raise DataValidationError listing every failed rule on its own line; do nothing on success.

    When the quarantine share is among the failures, the row rules that filled the quarantine
    follow it, each with its count and examples. The error's ``failures`` are the failed outcomes
    as dicts; ``report_uri`` (where the full report was stored) is added to the message and the error.
    """
    failures = report.failures()
    if not failures:
        return
    counts = ", ".join(f"{table}: {n} rows" for table, n in report.row_counts.items())
    lines = [f"data validation failed: {len(failures)} rule(s) broken ({counts})"]
    for outcome in failures:
        lines.append(outcome.describe())
        if outcome.check == "quarantine_share":
            lines += [f"  {o.describe()}" for o in report.quarantine_rules()]
    if report_uri:
        lines.append(f"full report: {report_uri}")
    raise DataValidationError("\n".join(lines), failures=[o.to_dict() for o in failures], report_uri=report_uri)
