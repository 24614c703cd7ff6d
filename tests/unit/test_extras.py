"""Optional parts name the extra that installs them; ``recsys --version`` prints the one version."""

from __future__ import annotations

import pytest

import recsys_lib
from recsys_lib.cli import main
from recsys_lib.errors import RecsysError
from recsys_lib.extras import MissingExtraError, require_extra


def test_installed_modules_pass() -> None:
    require_extra("serve", "json", "pytest", feature="anything")


def test_a_missing_module_names_the_extra_in_one_line() -> None:
    with pytest.raises(MissingExtraError) as missing:
        require_extra("serve", "json", "no_such_module_xyz", feature="recsys serve")
    assert str(missing.value) == (
        "recsys serve needs the serve extra (no_such_module_xyz is not installed): pip install 'recsys-lib[serve]'"
    )
    assert isinstance(missing.value, RecsysError) and isinstance(missing.value, ImportError)


def test_several_extras_and_modules() -> None:
    with pytest.raises(MissingExtraError, match=r"needs the devstack and airflow extras \(no_a, no_b are not"):
        require_extra("devstack,airflow", "no_a", "no_b", feature="recsys demo")


def test_a_missing_extra_is_one_line_from_the_cli(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "moto" else real(name))
    assert main(["stack", "up", "--state-dir", "unused"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "recsys: error: the local S3 endpoint (recsys stack, recsys demo) needs the devstack extra "
        "(moto is not installed): pip install 'recsys-lib[devstack]'"
    ]


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out == f"recsys {recsys_lib.__version__}\n"
