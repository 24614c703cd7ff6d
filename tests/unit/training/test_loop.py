"""Validation, early stopping, best weights and user callbacks in Lightning's own loop, on a module
whose validation metric follows a script (the right answer is known)."""

from __future__ import annotations

from typing import ClassVar

import pytest
import pytorch_lightning as pl
import torch
from pydantic import ValidationError

from recsys_lib.config import TrainConfig, load_config
from recsys_lib.errors import ConfigError
from recsys_lib.training import EpochHistory, build_trainer
from recsys_lib.training.callbacks import configured_callbacks


def _fit(module, loaders, config: TrainConfig, checkpoint_dir, callbacks=()):
    history = EpochHistory()
    trainer = build_trainer(config, callbacks=[history, *callbacks], checkpoint_dir=checkpoint_dir)
    trainer.fit(module, *loaders)
    return trainer, history


def test_patience_counts_validations_and_the_best_weights_come_back(scripted, loaders, tmp_path):
    module = scripted([0.1, 0.3, 0.2, 0.3, 0.9])  # the tie at 0.3 is no improvement
    trainer, history = _fit(module, loaders, TrainConfig(epochs=5, patience=2, accelerator="cpu"), tmp_path)
    assert module.validated_epochs == [0, 1, 2, 3]  # stopped after two validations without a better value
    assert [h["val_ndcg_at_10"] for h in history.epochs] == [0.1, 0.3, 0.2, 0.3]
    assert {"train_loss", "epoch_seconds"} <= set(history.epochs[0])
    assert trainer.callback_metrics["val_ndcg_at_10"].dtype == torch.float64
    assert not torch.equal(module.layer.weight, module.snapshots[1])
    assert trainer.checkpoint_callback.restore(module) == 1
    assert torch.equal(module.layer.weight, module.snapshots[1])
    assert [p.name for p in tmp_path.iterdir()] == ["best.ckpt"]  # the only thing written


def test_validate_every_still_validates_after_the_last_epoch(scripted, loaders, tmp_path):
    module = scripted([0.1, 0.2, 0.3])
    config = TrainConfig(epochs=5, validate_every=2, patience=1, accelerator="cpu")
    _, history = _fit(module, loaders, config, tmp_path)
    assert module.validated_epochs == [1, 3, 4]
    assert ["val_ndcg_at_10" in h for h in history.epochs] == [False, True, False, True, True]


class Recorder(pl.Callback):
    """A user's callback: what it sees of the validation metric."""

    seen: ClassVar[list[float]] = []

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        Recorder.seen.append(float(trainer.callback_metrics["val_ndcg_at_10"]))


def test_a_callback_named_in_config_sees_the_validation_metric(scripted, loaders, tmp_path):
    Recorder.seen = []
    config = TrainConfig(epochs=3, accelerator="cpu", callbacks=(f"{Recorder.__module__}:Recorder",))
    _fit(scripted([0.25, 0.5, 0.75]), loaders, config, tmp_path)
    assert Recorder.seen == [0.25, 0.5, 0.75]


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("recsys_lib.no_such_module:Thing", "cannot be imported"),
        ("pytorch_lightning.callbacks:NoSuchCallback", "cannot be imported"),
        ("pytorch_lightning.callbacks:EarlyStopping", "could not be built with no arguments"),
        ("collections:OrderedDict", "not a pytorch_lightning Callback"),
    ],
)
def test_a_bad_callback_is_a_config_error_naming_the_key(path, says):
    with pytest.raises(ConfigError, match=r"train\.callbacks\[0\]") as raised:
        configured_callbacks(TrainConfig(callbacks=(path,)))
    assert says in str(raised.value) and path in str(raised.value)


def test_a_callback_that_is_not_an_import_path_fails_at_load():
    with pytest.raises(ValidationError, match=r"train\.callbacks entries are 'package\.module:ClassName'"):
        TrainConfig(callbacks=("pytorch_lightning.callbacks.Timer",))
    with pytest.raises(ConfigError, match=r"train\.callbacks"):
        load_config(overrides={"train.callbacks": ["not a path"]})
    [timer] = configured_callbacks(TrainConfig(callbacks=("pytorch_lightning.callbacks:Timer",)))
    assert type(timer).__name__ == "Timer"
