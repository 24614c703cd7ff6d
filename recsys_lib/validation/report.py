"""Validation outcomes: one RuleOutcome per checked rule, a report per run, an error that lists failures.

Plain data, no Great Expectations types: reports are JSON-serialisable (``report.json``) and the
error message names each failed rule, its column and example values, one rule per line.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from recsys_lib.errors import DataValidationError


@dataclass(frozen=True)
class RuleOutcome:
    """The result of one rule on one table.

    ``rule`` is the GX expectation type (``expect_column_values_to_not_be_null``); ``column`` is
    None for table-level rules. ``examples`` holds up to 5 distinct unexpected values as JSON
    scalars (timestamps as ISO strings, nulls as None). ``detail`` says what was expected and,
    for rules without per-row values (column present, dtype, row count), what was observed.
    """

    table: str
    rule: str
    column: str | None
    success: bool
    unexpected_count: int
    examples: list
    detail: str | None = None

    def describe(self) -> str:
        """One line: ``events.event_type expect_column_values_to_be_in_set: 3 unexpected, e.g. [...]``."""
        where = f"{self.table}.{self.column}" if self.column else self.table
        if self.unexpected_count:
            summary = f"{self.unexpected_count} unexpected, e.g. {self.examples!r}"
        else:
            summary = self.detail or ("passed" if self.success else "failed")
        return f"{where} {self.rule}: {summary}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ValidationReport:
    """Every rule checked on the events and items tables, and whether all of them passed."""

    success: bool
    outcomes: list[RuleOutcome]
    row_counts: dict[str, int]  # {"events": n, "items": m}

    def failures(self) -> list[RuleOutcome]:
        """The outcomes of the rules that failed, in check order."""
        return [o for o in self.outcomes if not o.success]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form for ``report.json``."""
        return {
            "success": self.success,
            "row_counts": dict(self.row_counts),
            "failed_rules": len(self.failures()),
            "outcomes": [o.to_dict() for o in self.outcomes],
        }


def raise_for_failures(report: ValidationReport, report_uri: str | None = None) -> None:
    """Raise DataValidationError listing every failed rule on its own line; do nothing on success.

    The error's ``failures`` are the failed outcomes as dicts; ``report_uri`` (where the full
    report was stored) is added to the message and the error.
    """
    failures = report.failures()
    if not failures:
        return
    counts = ", ".join(f"{table}: {n} rows" for table, n in report.row_counts.items())
    lines = [f"data validation failed: {len(failures)} rule(s) broken ({counts})"]
    lines += [outcome.describe() for outcome in failures]
    if report_uri:
        lines.append(f"full report: {report_uri}")
    raise DataValidationError("\n".join(lines), failures=[o.to_dict() for o in failures], report_uri=report_uri)
