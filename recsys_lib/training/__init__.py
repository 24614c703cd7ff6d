"""Training plumbing: the one Lightning Trainer factory."""

from recsys_lib.training.trainer import build_trainer, uses_cuda

__all__ = ["build_trainer", "uses_cuda"]
