"""Every RECSYS_* environment variable is read in recsys_lib.config, typed, and nowhere else."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from recsys_lib.config import ENV_VARS, environment, load_config
from recsys_lib.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
_VAR = re.compile(r"RECSYS_[A-Z0-9_]+")


def test_no_module_but_config_names_a_recsys_variable() -> None:
    offenders = []
    for path in [*(REPO / "recsys_lib").rglob("*.py"), *(REPO / "dags").glob("*.py")]:
        if path == REPO / "recsys_lib" / "config.py":
            continue
        tree = ast.parse(path.read_text())
        # keys of a dict literal set variables for a child process (the dev stack's), they read nothing
        written = {id(k) for node in ast.walk(tree) if isinstance(node, ast.Dict) for k in node.keys}
        for node in ast.walk(tree):
            literal = isinstance(node, ast.Constant) and isinstance(node.value, str) and _VAR.fullmatch(node.value)
            if literal and id(node) not in written:
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno} {node.value}")
    assert offenders == []


@pytest.mark.parametrize(
    ("var", "value", "path", "expected"),
    [
        ("RECSYS_BUCKET", "shop-bucket", "storage.bucket", "shop-bucket"),
        ("RECSYS_PREFIX", "shop-a", "storage.prefix", "shop-a"),
        ("RECSYS_S3_MAX_ATTEMPTS", "2", "storage.max_attempts", 2),
        ("RECSYS_S3_READ_TIMEOUT", "1.5", "storage.read_timeout", 1.5),
        ("RECSYS_DATASET", "uk-shop", "data.dataset", "uk-shop"),
        ("RECSYS_MLFLOW_UI_URL", "https://mlflow.shop.example", "registry.ui_url", "https://mlflow.shop.example"),
    ],
)
def test_each_variable_sets_its_typed_setting(monkeypatch, var: str, value: str, path: str, expected: object) -> None:
    assert ENV_VARS[var] == path
    monkeypatch.setenv(var, value)
    section, key = path.split(".")
    assert getattr(getattr(load_config(), section), key) == expected


def test_a_bad_value_names_the_setting_and_the_value(monkeypatch) -> None:
    monkeypatch.setenv("RECSYS_S3_MAX_ATTEMPTS", "lots")
    with pytest.raises(ConfigError, match=r"storage\.max_attempts.*'lots'"):
        load_config()


def test_recsys_config_is_the_default_file_and_parameters_win(monkeypatch, tmp_path) -> None:
    config_file = tmp_path / "shop.yaml"
    config_file.write_text("train:\n  epochs: 5\nexport:\n  k: 20\n")
    monkeypatch.setenv("RECSYS_CONFIG", str(config_file))
    config = load_config(overrides={"k": 7})
    assert config.train.epochs == 5 and config.export.k == 7


def test_only_declared_variables_can_be_read() -> None:
    with pytest.raises(ConfigError, match="RECSYS_TYPO is not one of"):
        environment("RECSYS_TYPO")
