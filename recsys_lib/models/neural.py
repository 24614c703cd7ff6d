"""Shared skeleton of the learned models: one ``nn.Module`` (the network), one LightningModule (loss
and optimiser, validation from :class:`~recsys_lib.training.RecommenderModule`), one Trainer from
:func:`~recsys_lib.training.build_trainer`.

A subclass says how to build its network, its LightningModule and its training batches; fitting,
validation, early stopping, best-epoch restore and persistence (the network's ``state_dict``) are
the same for every model, and all of it runs in Lightning's own loop.
"""

from __future__ import annotations

import tempfile
from abc import abstractmethod
from typing import TYPE_CHECKING

import torch

from recsys_lib.errors import ModelError
from recsys_lib.models.base import Recommender
from recsys_lib.training import BestWeights, EpochCallback, EpochHistory, RankingValidation, build_trainer

if TYPE_CHECKING:
    from torch import nn
    from torch.utils.data import DataLoader

    from recsys_lib.config import ModelConfig, TrainConfig
    from recsys_lib.features import FeatureSet
    from recsys_lib.training import RecommenderModule, RunLogger


class NeuralRecommender(Recommender):
    """A Recommender whose whole fitted state is ``self.net``'s ``state_dict``."""

    def __init__(self, n_users: int, n_items: int, config: ModelConfig):
        super().__init__(n_users, n_items, config)
        self.net = self.build_net()
        self.history: list[dict[str, float]] = []
        """Metrics reported after each epoch of the last :meth:`fit`."""
        self.best_epoch: int | None = None
        """0-based epoch whose weights were kept (best validation NDCG@10), None without validation."""

    @abstractmethod
    def build_net(self) -> nn.Module:
        """A freshly initialised network for this model's sizes and config."""

    @abstractmethod
    def training_module(self, features: FeatureSet, train: TrainConfig) -> RecommenderModule:
        """The LightningModule that trains ``self.net`` (loss, optimiser)."""

    @abstractmethod
    def train_loader(self, features: FeatureSet, train: TrainConfig) -> DataLoader[tuple[torch.Tensor, ...]]:
        """Training batches for one epoch, shuffled from ``train.seed``."""

    def prepare(self, features: FeatureSet) -> None:
        """Hook run before the network is built in :meth:`fit` (e.g. to read the catalogue)."""

    def prepare_state(self, state: dict[str, torch.Tensor]) -> None:
        """Hook run by :meth:`from_state` before the weights are loaded (e.g. to size the network
        from buffers the state carries); raises ModelError when the state cannot fit."""

    def fit(
        self,
        features: FeatureSet,
        train: TrainConfig,
        on_epoch_end: EpochCallback | None = None,
        logger: RunLogger | None = None,
    ) -> NeuralRecommender:
        """Train freshly seeded weights for up to ``train.epochs`` epochs and keep the best
        validated ones; with ``train.refit``, then train fresh weights on train + validation for
        the best epoch count and keep those (their epochs reach ``on_epoch_end`` after the first
        phase's, with metrics prefixed ``refit_``, and ``logger`` likewise). Returns self.

        ``logger`` receives every logged metric at its epoch (the pipeline's MLflow run); the
        checkpoints of the best weights live in a temporary folder removed before returning."""
        self.check_fits(features)
        if features.train.empty:
            raise ModelError(f"the train split is empty; {self.name} needs at least one train interaction")
        self.prepare(features)
        validation = RankingValidation.prepare(self, features, train)  # None: no user to validate on
        history = EpochHistory(on_epoch_end)
        with tempfile.TemporaryDirectory(prefix="recsys-fit-") as checkpoints:
            trainer = build_trainer(  # seeds everything
                train, callbacks=[history], checkpoint_dir=checkpoints if validation else None, logger=logger
            )
            self.net = self.build_net()  # so the initial weights follow train.seed
            module = self.training_module(features, train)
            module.validation = validation
            trainer.fit(
                module,
                train_dataloaders=self.train_loader(features, train),
                val_dataloaders=validation.loader() if validation else None,
            )
            best = [c for c in trainer.checkpoint_callbacks if isinstance(c, BestWeights)]
            self.best_epoch = best[0].restore(module) if best else None
        self.history = history.epochs
        self.net.cpu().float().eval()
        if train.refit and self.best_epoch is not None:
            self._refit(features, train, on_epoch_end, logger)
        return self

    def _refit(
        self, features: FeatureSet, train: TrainConfig, on_epoch_end: EpochCallback | None, logger: RunLogger | None
    ) -> None:
        """The final fit of ``train.refit``: ``best_epoch + 1`` epochs on train + validation."""
        selected, first = self.best_epoch, self.history
        if selected is None:
            raise ModelError("refit needs a best epoch from a validated fit")
        offset = len(first)

        def shifted(epoch: int, metrics: dict[str, float]) -> None:
            if on_epoch_end is not None:
                on_epoch_end(offset + epoch, {f"refit_{k}": v for k, v in metrics.items()})

        final = train.model_copy(update={"epochs": selected + 1, "patience": None, "refit": False})
        refit_logger = logger.continued(prefix="refit", epoch_offset=offset) if logger is not None else None
        self.fit(features.with_validation_in_train(), final, on_epoch_end=shifted, logger=refit_logger)
        self.history = first + [{f"refit_{k}": v for k, v in h.items()} for h in self.history]
        self.best_epoch = selected

    @property
    def device(self) -> torch.device:
        """Where the network's weights are (CPU after :meth:`fit`, which moves them back)."""
        return next(self.net.parameters()).device

    def state(self) -> dict[str, torch.Tensor]:
        """The network's ``state_dict`` as detached, contiguous CPU copies that later training leaves unchanged."""
        return {k: v.detach().cpu().clone().contiguous() for k, v in self.net.state_dict().items()}

    @classmethod
    def from_state(
        cls, n_users: int, n_items: int, config: ModelConfig, state: dict[str, torch.Tensor]
    ) -> NeuralRecommender:
        """Rebuild a fitted model from :meth:`state` in eval mode; ModelError when the tensors do
        not fit ``n_users x n_items`` and the config (strict load: no missing or extra keys)."""
        model = cls(n_users, n_items, config)
        model.prepare_state(state)
        try:
            model.net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelError(f"{cls.name} state does not fit {n_users} users x {n_items} items: {exc}") from exc
        model.net.eval()
        return model
