"""docs/RELIABILITY.md says what the tests do: its tables are rendered from the corpus and the
fault list, and every test the fault table names exists."""

from __future__ import annotations

import ast

from tests.reliability import DOC, FAULTS, REPO, generated_part, render


def test_the_document_matches_the_tests() -> None:
    assert generated_part(DOC.read_text()) == render(), "run: .venv/bin/python -m tests.reliability"


def test_every_named_test_exists() -> None:
    for fault in FAULTS:
        path, name = fault.test.split("::")
        tree = ast.parse((REPO / path).read_text())
        assert name in {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}, fault.test
