from __future__ import annotations

import pytest

from recsys_lib.cli import _params
from recsys_lib.config import ALSConfig, PipelineConfig, load_config
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
        ({"model.als.alpha": 0}, "model.als.alpha"),
        ({"model.als.factors": 8}, "model.als.factors"),  # the factors are model.embedding_dim
    ],
)
def test_bad_values_fail_naming_the_key(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        load_config(overrides=overrides)


def test_als_is_chosen_and_tuned_by_set_flags() -> None:
    """What ``recsys retrain --set model.name=als --set model.als.alpha=20 ...`` hands load_config."""
    flags = ["model.name=als", "model.als.alpha=20", "model.als.iterations=5", "embedding_dim=32"]
    config = load_config(overrides=_params(flags))
    assert (config.model.name, config.model.embedding_dim) == ("als", 32)
    assert config.model.als == ALSConfig(alpha=20.0, iterations=5, regularization=0.01)
    assert load_config(overrides={"model": "als"}).model.als == ALSConfig()


def test_config_is_frozen() -> None:
    config = PipelineConfig()
    with pytest.raises(Exception, match="frozen"):
        config.train.epochs = 2  # type: ignore[misc]
