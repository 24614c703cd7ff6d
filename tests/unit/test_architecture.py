"""The package layering (pyproject.toml, [tool.importlinter]): no package imports one above it, so
no import cycle between packages can come back unnoticed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_imports_only_from_the_layers_below_it() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "2 kept, 0 broken" in result.stdout


def test_test_modules_have_unique_names() -> None:
    """Test folders without ``__init__.py`` import their modules by file name: two files of one
    name stop the whole suite at collection."""
    names = [path.name for path in (Path(__file__).resolve().parents[1]).rglob("test_*.py")]
    repeated = sorted({name for name in names if names.count(name) > 1})
    assert not repeated, f"rename one of each: {repeated}"
