"""The only place a Lightning Trainer is built: one device, seeded, quiet, nothing written to CWD.

Per-epoch metrics do not go through a Lightning logger: models report them to the caller's
``on_epoch_end`` callback, which logs them to MLflow (see :mod:`recsys_lib.pipelines.train`).
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings

import pytorch_lightning as pl
import torch

from recsys_lib.config import TrainConfig

#: Lightning's start-up chatter ("GPU available: ...", tips) goes through these loggers at INFO.
_CHATTY_LOGGERS = ("pytorch_lightning.utilities.rank_zero", "pytorch_lightning.accelerators.cuda")
#: Advice that does not apply to in-memory tensor batches (workers, logging interval), and a
#: deprecation inside Lightning's own use of torch's pytree.
_IGNORED_WARNINGS = (
    r".*does not have many workers.*",
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


def build_trainer(
    config: TrainConfig, *, callbacks: list[pl.Callback] | None = None, enable_validation: bool = True
) -> pl.Trainer:
    """A seeded single-device Trainer for ``config.epochs`` epochs.

    Seeds python, numpy and torch (and loader workers) with ``config.seed`` first, so a model built
    after this call starts from the same weights. bf16 mixed precision on CUDA, full fp32 on CPU;
    deterministic algorithms; no logger, checkpoints, model summary, progress bar or sanity
    validation; ``enable_validation=False`` turns the validation loop off entirely.
    """
    pl.seed_everything(config.seed, workers=True, verbose=False)
    _quiet_lightning()
    cuda = uses_cuda(config)
    return pl.Trainer(
        accelerator=config.accelerator,
        devices=1,
        precision="bf16-mixed" if cuda else "32-true",
        max_epochs=config.epochs,
        deterministic=True,
        logger=False,
        callbacks=list(callbacks or []),
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
        limit_val_batches=None if enable_validation else 0,
        default_root_dir=os.path.join(tempfile.gettempdir(), "recsys-lightning"),
    )
