"""The one per-epoch hook every trained model shares: timing, validation, early stop, best weights."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytorch_lightning as pl
import torch

from recsys_lib import schema
from recsys_lib.errors import DataValidationError
from recsys_lib.evaluation.evaluate import SplitEvaluator

if TYPE_CHECKING:
    from recsys_lib.config import TrainConfig
    from recsys_lib.features import FeatureSet
    from recsys_lib.models.neural import NeuralRecommender

EpochCallback = Callable[[int, dict[str, float]], None]
#: Validation metric that early stopping and best-epoch selection follow.
VALIDATION_METRIC = "val_ndcg_at_10"


class EpochReport(pl.Callback):
    """After each training epoch: ``train_loss``, ``epoch_seconds`` (training only) and, on
    validation epochs, ``val_ndcg_at_10`` on the validation split (the model in eval mode; the
    same seeded sample of at most ``train.validation_users`` users every epoch). Keeps a
    copy of the best validated weights, stops after ``train.patience`` validations without
    improvement, and hands each epoch's metrics to ``on_epoch_end`` and ``model.history``.

    Validation is skipped when no validation user has new items (e.g. an empty split).
    """

    def __init__(
        self, model: NeuralRecommender, features: FeatureSet, train: TrainConfig, on_epoch_end: EpochCallback | None
    ):
        self.model, self.features, self.train = model, features, train
        self.on_epoch_end = on_epoch_end
        try:  # computed once: each validation then costs the ranking alone
            self.evaluator: SplitEvaluator | None = SplitEvaluator.prepare(
                features, schema.VALIDATION, max_users=train.validation_users, seed=train.seed
            )
        except DataValidationError:
            self.evaluator = None  # no validation user has new items: validation is skipped
        self.history: list[dict[str, float]] = []
        self.best_value = -math.inf
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self._stale = 0
        self._started = 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch
        metrics = {"train_loss": float(trainer.callback_metrics["train_loss"])}
        metrics["epoch_seconds"] = time.perf_counter() - self._started
        last = epoch + 1 >= (trainer.max_epochs or 0)
        if self.evaluator is not None and ((epoch + 1) % self.train.validate_every == 0 or last):
            self.model.net.eval()
            value = self.evaluator.evaluate(self.model, ks=(10,))["ndcg_at_10"]
            self.model.net.train()
            metrics[VALIDATION_METRIC] = value
            if value > self.best_value:
                self.best_value, self.best_epoch, self._stale = value, epoch, 0
                self.best_state = {k: v.detach().clone() for k, v in self.model.net.state_dict().items()}
            else:
                self._stale += 1
                if self.train.patience is not None and self._stale >= self.train.patience:
                    trainer.should_stop = True
        self.history.append(metrics)
        if self.on_epoch_end is not None:
            self.on_epoch_end(epoch, metrics)

    def restore_best(self) -> None:
        """Load the best validated weights into the network (no-op when nothing was validated)."""
        if self.best_state is not None:
            self.model.net.load_state_dict(self.best_state)
