"""Training plumbing: the one Lightning Trainer factory and the shared per-epoch callback."""

from recsys_lib.training.trainer import build_trainer, uses_cuda

__all__ = ["build_trainer", "uses_cuda"]
