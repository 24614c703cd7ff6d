"""Training plumbing: the one Lightning Trainer factory, validation by ranking, the shared callbacks
and the MLflow logger into the pipeline's run."""

from recsys_lib.training.callbacks import BestWeights, EpochCallback, EpochHistory
from recsys_lib.training.run_logger import RunLogger
from recsys_lib.training.trainer import build_trainer, uses_cuda
from recsys_lib.training.validation import VALIDATION_METRIC, RankingValidation, RecommenderModule

__all__ = [
    "VALIDATION_METRIC",
    "BestWeights",
    "EpochCallback",
    "EpochHistory",
    "RankingValidation",
    "RecommenderModule",
    "RunLogger",
    "build_trainer",
    "uses_cuda",
]
