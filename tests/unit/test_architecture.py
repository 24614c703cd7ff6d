"""The import contracts (pyproject.toml, [tool.importlinter]): no package imports one above it, so
no import cycle between packages can come back unnoticed; MLflow is imported only under
``registry/``, Great Expectations only under ``validation/``, boto3/botocore only under
``storage/`` and implicit only in ``models/als.py``; table names and storage keys are spelled in one module each."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _contracts() -> list[dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return list(config["contracts"])


def test_every_import_contract_is_kept() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"{len(_contracts())} kept, 0 broken" in result.stdout


def test_mlflow_gx_and_boto3_are_each_behind_one_package() -> None:
    """The whole library is the source of both boundary contracts, and only the owning package's
    own imports are let through: a new package is covered without anyone listing it."""
    boundaries = {
        frozenset(c["forbidden_modules"]): (c["source_modules"], sorted(c.get("ignore_imports", [])))
        for c in _contracts()
        if c["type"] == "forbidden" and c["source_modules"] == ["recsys_lib"]
    }
    assert boundaries[frozenset({"mlflow"})] == (["recsys_lib"], ["recsys_lib.registry.** -> mlflow"])
    assert boundaries[frozenset({"great_expectations"})] == (
        ["recsys_lib"],
        ["recsys_lib.validation.** -> great_expectations"],
    )
    assert boundaries[frozenset({"boto3", "botocore"})] == (
        ["recsys_lib"],
        ["recsys_lib.storage.** -> boto3", "recsys_lib.storage.** -> botocore"],
    )
    assert boundaries[frozenset({"implicit"})] == (["recsys_lib"], ["recsys_lib.models.als -> implicit"])


def test_test_modules_have_unique_names() -> None:
    """Test folders without ``__init__.py`` import their modules by file name: two files of one
    name stop the whole suite at collection."""
    names = [path.name for path in (Path(__file__).resolve().parents[1]).rglob("test_*.py")]
    repeated = sorted({name for name in names if names.count(name) > 1})
    assert not repeated, f"rename one of each: {repeated}"


def _string_literals(path: Path) -> list[tuple[int, str]]:
    """Every string constant of ``path`` with its line, docstrings and f-string parts included."""
    return [
        (node.lineno, node.value)
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def test_export_tables_and_key_prefixes_are_spelled_in_one_module_each() -> None:
    """Table names live in ``schema.ExportTable``, storage keys in ``storage/layout.py``: a literal
    "user_topk" or "exports/..." anywhere else would drift from them."""
    from recsys_lib.schema import ExportTable

    names = {str(t) for t in ExportTable}
    prefixes = ("exports/", "raw/", "snapshots/", "features/", "models/", "outcomes/", "ingested/", "quarantine/")
    offenders = []
    for path in (ROOT / "recsys_lib").rglob("*.py"):
        if path.name == "schema.py" or path.relative_to(ROOT).as_posix() == "recsys_lib/storage/layout.py":
            continue
        for line, value in _string_literals(path):
            if value in names or value.startswith(prefixes):
                offenders.append(f"{path.relative_to(ROOT)}:{line} {value!r}")
    assert offenders == []
