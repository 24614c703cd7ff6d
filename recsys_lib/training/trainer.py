"""The only place a Lightning Trainer is built: one device, seeded, quiet, nothing written to CWD.

With validation, the Trainer validates every ``train.validate_every`` epochs and after the last,
keeps the best weights (:class:`~recsys_lib.training.callbacks.BestWeights`) and stops early
after ``train.patience`` validations without improvement (Lightning's ``EarlyStopping``). Metrics
go to the logger given (:class:`~recsys_lib.training.run_logger.RunLogger` in the pipeline), or
nowhere but ``trainer.callback_metrics`` without one.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from pytorch_lightning.loggers import Logger

from recsys_lib.config import TrainConfig
from recsys_lib.training.callbacks import BestWeights, ValidateLastEpoch, configured_callbacks
from recsys_lib.training.validation import VALIDATION_METRIC

#: Lightning's start-up chatter ("GPU available: ...", tips) goes through these loggers at INFO.
_CHATTY_LOGGERS = ("pytorch_lightning.utilities.rank_zero", "pytorch_lightning.accelerators.cuda")
#: Advice that does not apply to in-memory tensor batches (workers, logging interval), a
#: deprecation inside Lightning's own use of torch's pytree, and the note that a module with a
#: ``validation_step`` is fitted without validation (there is no validation user to rank).
_IGNORED_WARNINGS = (
    r".*does not have many workers.*",
    r".*defined a `validation_step` but have no `val_dataloader`.*",
    r".*smaller than the logging interval.*",
    r".*LeafSpec.*is deprecated.*",
)


def uses_cuda(config: TrainConfig) -> bool:
    """Whether training with ``config`` runs on a CUDA GPU (``auto`` picks one when present)."""
    return config.accelerator != "cpu" and torch.cuda.is_available()


def _quiet_lightning() -> None:
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in _IGNORED_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)


def validation_callbacks(config: TrainConfig, checkpoint_dir: str | Path) -> list[pl.Callback]:
    """Best-weight checkpoints into ``checkpoint_dir``, validation after the last epoch, and early
    stopping on ``val_ndcg_at_10`` when ``config.patience`` is set (counted in validations)."""
    callbacks: list[pl.Callback] = [BestWeights(checkpoint_dir), ValidateLastEpoch()]
    if config.patience is not None:
        callbacks.append(
            EarlyStopping(VALIDATION_METRIC, mode="max", patience=config.patience, check_on_train_epoch_end=False)
        )
    return callbacks


def build_trainer(
    config: TrainConfig,
    *,
    callbacks: list[pl.Callback] | None = None,
    checkpoint_dir: str | Path | None = None,
    logger: Logger | None = None,
) -> pl.Trainer:
    """A seeded single-device Trainer for ``config.epochs`` epochs.

    Seeds python, numpy and torch (and loader workers) with ``config.seed`` first, so a model built
    after this call starts from the same weights. bf16 mixed precision on CUDA, full fp32 on CPU;
    deterministic algorithms; no model summary, progress bar or sanity validation. ``callbacks``
    run first, then ``config.callbacks`` (ConfigError for one that cannot be built).

    With ``checkpoint_dir`` (a folder the caller removes), the Trainer validates (see
    :func:`validation_callbacks`) and writes checkpoints there, and only there; without it, the
    validation loop is off and nothing is written. ``logger``: where logged metrics go (none: only
    ``trainer.callback_metrics``).
    """
    pl.seed_everything(config.seed, workers=True, verbose=False)
    _quiet_lightning()
    cuda = uses_cuda(config)
    every = [*(callbacks or []), *configured_callbacks(config)]
    if checkpoint_dir is not None:
        every += validation_callbacks(config, checkpoint_dir)
    return pl.Trainer(
        accelerator=config.accelerator,
        devices=1,
        precision="bf16-mixed" if cuda else "32-true",
        max_epochs=config.epochs,
        deterministic=True,
        logger=logger if logger is not None else False,
        callbacks=every,
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in every),
        enable_model_summary=False,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
        check_val_every_n_epoch=config.validate_every,
        limit_val_batches=None if checkpoint_dir is not None else 0,
        default_root_dir=checkpoint_dir or os.path.join(tempfile.gettempdir(), "recsys-lightning"),
    )
