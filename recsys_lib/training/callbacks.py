"""The callbacks every fit of a learned model runs with, and the ones a user adds through config.

Validation itself is the LightningModule's (:mod:`recsys_lib.training.validation`); early stopping
is Lightning's ``EarlyStopping``. What is here: each epoch's metrics for the caller
(:class:`EpochHistory`), the best validated weights (:class:`BestWeights`), the validation after
the last epoch that ``check_val_every_n_epoch`` alone would skip (:class:`ValidateLastEpoch`), and
:func:`configured_callbacks`.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from recsys_lib.errors import ConfigError
from recsys_lib.training.validation import VALIDATION_METRIC

if TYPE_CHECKING:
    from recsys_lib.config import TrainConfig

EpochCallback = Callable[[int, dict[str, float]], None]


class EpochHistory(pl.Callback):
    """After each training epoch: logs ``epoch_seconds`` (the training batches only, not validation
    or logging) next to ``train_loss``, and hands ``{train_loss, epoch_seconds}`` plus, on epochs
    that validated, ``val_ndcg_at_10`` to ``on_epoch_end(epoch, metrics)`` and :attr:`epochs`."""

    def __init__(self, on_epoch_end: EpochCallback | None = None):
        self.on_epoch_end = on_epoch_end
        self.epochs: list[dict[str, float]] = []
        """One dict of metrics per finished epoch."""
        self._started = self._trained = 0.0
        self._validated = False

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start the epoch's clock and forget whether the previous epoch validated."""
        self._started = self._trained = time.perf_counter()
        self._validated = False

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Note when the latest training batch finished, so ``epoch_seconds`` leaves validation out."""
        self._trained = time.perf_counter()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Note that this epoch validated (not the sanity check before training)."""
        self._validated = not trainer.sanity_checking

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Log ``epoch_seconds``, record the epoch's metrics in :attr:`epochs` and pass them to
        ``on_epoch_end(epoch, metrics)`` (``epoch`` 0-based)."""
        seconds = self._trained - self._started
        pl_module.log("epoch_seconds", seconds, on_step=False, on_epoch=True)
        metrics = {"train_loss": float(trainer.callback_metrics["train_loss"]), "epoch_seconds": seconds}
        if self._validated:
            metrics[VALIDATION_METRIC] = float(trainer.callback_metrics[VALIDATION_METRIC])
        self.epochs.append(metrics)
        if self.on_epoch_end is not None:
            self.on_epoch_end(trainer.current_epoch, metrics)


class ValidateLastEpoch(pl.Callback):
    """Validate after the last epoch too, whatever ``check_val_every_n_epoch`` says, so the final
    weights compete for best (``train.validate_every``'s contract). Lightning reads
    ``trainer.check_val_every_n_epoch`` at the end of each epoch; this sets it to 1 when the last
    one starts."""

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """When the last epoch starts, make Lightning validate at its end."""
        if trainer.max_epochs is not None and trainer.current_epoch + 1 >= trainer.max_epochs:
            trainer.check_val_every_n_epoch = 1


class BestWeights(ModelCheckpoint):
    """``ModelCheckpoint`` of the weights with the best ``val_ndcg_at_10`` (higher is better; a tie
    keeps the earlier epoch), saved after each validation that improves it into ``dirpath``, weights
    only; :meth:`restore` loads them back into the module when ``fit`` returns."""

    def __init__(self, dirpath: str | Path):
        super().__init__(
            dirpath=dirpath,
            filename="best",
            monitor=VALIDATION_METRIC,
            mode="max",
            save_top_k=1,
            save_weights_only=True,
            save_on_train_epoch_end=False,
            auto_insert_metric_name=False,
        )

    def restore(self, module: pl.LightningModule) -> int | None:
        """Load the best validated weights into ``module``; returns their 0-based epoch, or None
        (and leaves the module as it is) when nothing was validated."""
        if not self.best_model_path:
            return None
        checkpoint = torch.load(self.best_model_path, map_location="cpu", weights_only=True)
        module.load_state_dict(checkpoint["state_dict"])
        return int(checkpoint["epoch"])


def configured_callbacks(config: TrainConfig) -> list[pl.Callback]:
    """A new instance of each ``train.callbacks`` class (``package.module:ClassName``, built with no
    arguments). Raises ConfigError naming the entry when it cannot be imported, built, or is not a
    Lightning callback."""
    callbacks = []
    for i, path in enumerate(config.callbacks):
        key = f"train.callbacks[{i}] = {path!r}"
        module_name, _, attribute = path.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
            for part in attribute.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"{key} cannot be imported ({exc}); give 'package.module:ClassName'") from exc
        try:
            callback = target()
        except Exception as exc:
            raise ConfigError(f"{key} could not be built with no arguments ({exc!r})") from exc
        if not isinstance(callback, pl.Callback):
            raise ConfigError(f"{key} is a {type(callback).__name__}, not a pytorch_lightning Callback")
        callbacks.append(callback)
    return callbacks
