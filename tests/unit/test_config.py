from __future__ import annotations

import pytest

from recsys_lib.config import PipelineConfig, load_config
from recsys_lib.errors import ConfigError


def test_defaults_and_aliases() -> None:
    config = load_config(overrides={"epochs": 3, "model": "popularity", "k": 5, "train.batch_size": 64})
    assert (config.train.epochs, config.model.name, config.export.k, config.train.batch_size) == (
        3,
        "popularity",
        5,
        64,
    )
    assert config.registered_model_name == "recsys-shop"


def test_yaml_then_env_then_overrides(tmp_path, monkeypatch) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  dataset: from-yaml\ntrain:\n  epochs: 7\nstorage:\n  bucket: yaml-bucket\n")
    monkeypatch.setenv("RECSYS_BUCKET", "env-bucket")
    config = load_config(path, overrides={"epochs": 9})
    assert (config.data.dataset, config.train.epochs, config.storage.bucket) == ("from-yaml", 9, "env-bucket")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"epochz": 1}, "unknown parameter 'epochz'"),
        ({"model": "deep"}, "model.name"),
        ({"k": 0}, "export.k"),
        ({"dataset": "../../etc"}, "data.dataset"),
        ({"train.nope": 1}, "train.nope"),
        ({"nosection.x": 1}, "unknown config section 'nosection'"),
        ({"evaluation.promotion_metric": "ndcg_at_7"}, "promotion_metric"),
    ],
)
def test_bad_values_fail_naming_the_key(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        load_config(overrides=overrides)


def test_config_is_frozen() -> None:
    config = PipelineConfig()
    with pytest.raises(Exception, match="frozen"):
        config.train.epochs = 2  # type: ignore[misc]
