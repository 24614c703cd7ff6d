"""Per-epoch validation through Lightning's own loop: full-catalogue NDCG@10 of the validation users.

:class:`RankingValidation` holds what one validation needs (a seeded sample of validation users,
their histories and new items, prepared once); :class:`RecommenderModule`, the base of every
model's LightningModule, ranks its batches in ``validation_step`` and logs
:data:`VALIDATION_METRIC` in ``on_validation_epoch_end``, so the metric is in
``trainer.callback_metrics`` for ``EarlyStopping``, ``ModelCheckpoint``, the logger and any
callback a user adds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler, TensorDataset

from recsys_lib import schema
from recsys_lib.errors import DataValidationError
from recsys_lib.evaluation.evaluate import SplitEvaluator
from recsys_lib.search import bounded_chunk
from recsys_lib.training.optim import RowAdam

if TYPE_CHECKING:
    from recsys_lib.config import TrainConfig
    from recsys_lib.features import FeatureSet
    from recsys_lib.models.base import Recommender

#: Validation metric that early stopping and best-epoch selection follow.
VALIDATION_METRIC = "val_ndcg_at_10"
_K = 10
#: Users per validation batch (lowered for large catalogues, see :func:`bounded_chunk`): the chunk
#: ``Recommender.recommend`` scores at once, so each batch is one scoring call.
BATCH_USERS = 4096


class RankingValidation:
    """The validation split's evaluation inputs and the lists a model ranked for them this epoch.

    ``loader()`` yields ``(positions,)`` into ``evaluator.users`` ((batch,) int64, in order); ``update``
    ranks the top 10 of those users with the model (scored from, and excluding, each user's train
    history: :class:`~recsys_lib.evaluation.evaluate.SplitEvaluator`'s protocol); ``compute`` is the
    NDCG@10 of every list, the same number ``SplitEvaluator.evaluate`` gives.
    """

    def __init__(self, model: Recommender, evaluator: SplitEvaluator):
        self.model, self.evaluator = model, evaluator
        self.batch_users = bounded_chunk(BATCH_USERS, evaluator.n_items)
        self.lists = np.full((len(evaluator.users), _K), -1, dtype=np.int64)  # (n_users, k) this epoch's top 10

    @classmethod
    def prepare(cls, model: Recommender, features: FeatureSet, train: TrainConfig) -> RankingValidation | None:
        """Validation of ``model`` on the same seeded sample of at most ``train.validation_users``
        users every epoch; None when no validation user has new items (e.g. an empty split)."""
        try:
            evaluator = SplitEvaluator.prepare(
                features, schema.VALIDATION, max_users=train.validation_users, seed=train.seed
            )
        except DataValidationError:
            return None
        return cls(model, evaluator)

    def loader(self) -> DataLoader[tuple[torch.Tensor, ...]]:
        """Batches of positions into the evaluated users, in order. The loader has its own generator:
        iterating a DataLoader draws a seed from it, and the global one drives training's negative
        samples and dropout, which validation must leave as they would be without it."""
        positions = torch.arange(len(self.evaluator.users))
        batches = BatchSampler(SequentialSampler(positions), self.batch_users, drop_last=False)
        return DataLoader(TensorDataset(positions), sampler=batches, batch_size=None, generator=torch.Generator())

    def update(self, positions: torch.Tensor) -> None:
        """Rank the users at ``positions`` ((batch,) int64) and keep their top-10 lists."""
        at = positions.cpu().numpy()
        users = self.evaluator.users[at]
        self.lists[at] = self.model.recommend(users, _K, self.evaluator.history, exclude=self.evaluator.seen)[0]

    def compute(self) -> float:
        """NDCG@10 of the lists ranked since the last call; resets them."""
        value = self.evaluator.metrics(self.lists, ks=(_K,))[f"ndcg_at_{_K}"]
        self.lists.fill(-1)
        return value


class RecommenderModule(pl.LightningModule):
    """Base of the learned models' LightningModules: a subclass adds the loss and the optimiser,
    this adds validation by ranking (when ``validation`` is set and the Trainer validates).

    Validation scores in full precision even under bf16-mixed training, as the test metrics and
    serving do, so the metric that picks the best epoch is the one the model is judged by.
    """

    def __init__(self) -> None:
        super().__init__()
        self.validation: RankingValidation | None = None
        self.row_adam: RowAdam | None = None  # set by configure_optimizers when it builds one

    def validation_step(self, batch: tuple[torch.Tensor], batch_idx: int) -> None:
        """Rank the validation users of ``batch`` (positions into them) in full precision, even
        under bf16 autocast; RuntimeError when :attr:`validation` is not set."""
        if self.validation is None:
            raise RuntimeError("validation_step needs RecommenderModule.validation to be set")
        (positions,) = batch
        with torch.autocast(self.device.type, enabled=False):
            self.validation.update(positions)

    def on_validation_epoch_start(self) -> None:
        """Bring every row-sparse table to the current step (:meth:`RowAdam.catch_up`) before it is
        ranked with, so the validated (and checkpointed) weights are AdamW's, not lazily behind."""
        self.catch_up_tables()

    def on_train_end(self) -> None:
        """The same after the last step, for weights kept without a validation after it."""
        self.catch_up_tables()

    def catch_up_tables(self, rows: Mapping[torch.Tensor, torch.Tensor] | None = None) -> None:
        """:meth:`RowAdam.catch_up` of ``rows`` (every row: None) on :attr:`row_adam`, if set; a
        model calls it with the rows a step is about to read."""
        if self.row_adam is not None:
            self.row_adam.catch_up(rows)

    def on_validation_epoch_end(self) -> None:
        """Log the epoch's NDCG@10 as :data:`VALIDATION_METRIC` (float64), so early stopping,
        checkpoints, loggers and user callbacks see it in ``trainer.callback_metrics``."""
        if self.validation is not None:
            value = torch.tensor(self.validation.compute(), dtype=torch.float64)  # kept at float64 by Lightning
            self.log(VALIDATION_METRIC, value, on_step=False, on_epoch=True)
