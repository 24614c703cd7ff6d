"""The recsys CLI: help for every command, one-line errors with exit status 1."""

from __future__ import annotations

import pytest

from recsys_lib.cli import build_parser, main

COMMANDS = [
    "demo",
    "stack",
    "upload-raw",
    "generate",
    "simulate",
    "retrain",
    "recommend",
    "similar",
    "outcomes",
    "profile",
]


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command in out


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_its_own_help(command: str) -> None:
    sub = build_parser()._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    assert sub.format_help().strip()


def test_bad_parameters_fail_with_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["retrain", "--dataset", "shop", "--ds", "2026-01-01", "--set", "epochs=0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert err[0].startswith("recsys: error: invalid configuration: train.epochs")


def test_a_bad_model_setting_names_its_key(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["retrain", "--dataset", "shop", "--ds", "2026-01-01", "--set", "model=als", "--set", "model.als.iterations=0"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert err[0].startswith("recsys: error: invalid configuration: model.als.iterations")


def test_malformed_set_flag_is_explained(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["retrain", "--dataset", "shop", "--ds", "2026-01-01", "--set", "epochs"]) == 1
    assert "--set expects key=value" in capsys.readouterr().err
