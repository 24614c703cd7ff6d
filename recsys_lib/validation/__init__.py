"""Data validation of the canonical tables: the only package that imports Great Expectations.

``validate_tables(events, items, interval_end=...)`` runs the data contract of DESIGN.md
section 3 and returns a JSON-serialisable :class:`ValidationReport`; ``raise_for_failures``
turns a failed report into a DataValidationError naming each failed rule. GX itself is imported
only when a validation runs.
"""

from __future__ import annotations

from recsys_lib.validation.report import RuleOutcome, ValidationReport, raise_for_failures
from recsys_lib.validation.validate import Validation, validate_tables

__all__ = ["RuleOutcome", "Validation", "ValidationReport", "raise_for_failures", "validate_tables"]
