"""How ``recsys`` reports an error: one line and exit status 1 for anything the user can act on
(naming the setting to check for an endpoint), the traceback too with ``-v``, and a bug's
traceback as it is."""

from __future__ import annotations

import pytest

from recsys_lib import cli
from recsys_lib.errors import RegistryUnavailableError

SIMILAR = ["similar", "--item", "i1"]


def _failing(exc: Exception):  # type: ignore[no-untyped-def]
    def command(args: object) -> None:
        raise exc

    return command


def test_an_endpoint_error_is_one_line_naming_the_setting(monkeypatch, capsys: pytest.CaptureFixture[str]) -> None:
    down = RegistryUnavailableError(
        "MLflow tracking server http://mlflow:5000 is unreachable while registering (timed out)"
    )
    monkeypatch.setattr(cli, "cmd_similar", _failing(down))
    assert cli.main(SIMILAR) == 1
    assert capsys.readouterr().err.splitlines() == [
        "recsys: error: MLflow tracking server http://mlflow:5000 is unreachable while registering (timed out); "
        "check MLFLOW_TRACKING_URI"
    ]
    assert cli.main(["-v", *SIMILAR]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "Traceback (most recent call last):" and "RegistryUnavailableError" in err[-2]
    assert err[-1].startswith("recsys: error: MLflow tracking server http://mlflow:5000 is unreachable")


def test_an_unexpected_error_keeps_its_traceback(monkeypatch) -> None:
    monkeypatch.setattr(cli, "cmd_similar", _failing(ZeroDivisionError("a bug")))
    with pytest.raises(ZeroDivisionError, match="a bug"):
        cli.main(SIMILAR)
