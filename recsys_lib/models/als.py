"""Alternating least squares (Hu, Koren and Volinsky, 2008), fitted by the implicit library.

score(u, i) = <x_u, y_i>. A train pair is a preference of 1 with confidence ``model.als.alpha`` x its
interaction weight, every other pair a preference of 0 with confidence 1 (implicit's convention);
each iteration solves every user's factors given the items' and then every item's given the
users' (implicit's conjugate-gradient solver), from a random start drawn from ``train.seed``.

:class:`ImplicitFactorization` is what any factorisation of implicit shares behind the Recommender
contract: the fit on implicit's own thread pool, validation, history and refit, and a fitted state
of two factor matrices. Only fitting imports implicit; a saved model loads, scores, exports and
serves with torch alone.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from recsys_lib import schema
from recsys_lib.errors import ConfigError, DataValidationError, ModelError
from recsys_lib.evaluation.evaluate import SplitEvaluator
from recsys_lib.models.base import Recommender
from recsys_lib.training import VALIDATION_METRIC, uses_cuda

if TYPE_CHECKING:
    from collections.abc import Callable

    from recsys_lib.config import ModelConfig, TrainConfig
    from recsys_lib.features import FeatureSet, UserHistory
    from recsys_lib.training import EpochCallback, RunLogger

_STATE_KEYS = ("user_factors", "item_factors")


def implicit_on_gpu(train: TrainConfig) -> bool:
    """Whether implicit fits on CUDA under ``train.accelerator``: ``auto`` when a GPU and implicit's
    GPU build are both present, ``cpu`` never, ``gpu``/``cuda`` always (ConfigError when implicit
    cannot: its PyPI wheels enable CUDA only where the ``rmm-cu13`` package is installed too)."""
    if train.accelerator == "cpu":
        return False
    import implicit.gpu

    has_cuda = bool(implicit.gpu.HAS_CUDA)
    if train.accelerator == "auto":
        return has_cuda and uses_cuda(train)
    if not has_cuda:
        raise ConfigError(
            f"train.accelerator={train.accelerator!r}, but implicit cannot use a GPU here (it needs a CUDA "
            "device and `pip install rmm-cu13` next to implicit); set train.accelerator to 'auto' or 'cpu'"
        )
    return True


class ImplicitFactorization(Recommender):
    """A matrix factorisation fitted by an estimator of the implicit library; the fitted state is
    its ``user_factors`` (n_users, d) and ``item_factors`` (n_items, d), float32, and
    ``score = user_factors @ item_factors.T``.

    :meth:`fit` runs the estimator on the train matrix with ``torch.get_num_threads()`` threads of
    implicit's own pool and BLAS held at one thread meanwhile (as implicit advises), so a caller
    pins it as it pins torch. Each iteration reaches ``on_epoch_end``, ``logger`` and
    :attr:`history` as an epoch with its ``epoch_seconds``; the last one also with the validation
    NDCG@10 (the seeded sample of ``train.validation_users`` that per-epoch validation ranks).
    ``train.refit`` then fits fresh factors on train + validation (metrics prefixed ``refit_``).
    """

    def __init__(self, n_users: int, n_items: int, config: ModelConfig):
        super().__init__(n_users, n_items, config)
        dim = config.embedding_dim
        self.user_factors = torch.zeros((n_users, dim), dtype=torch.float32)  # (n_users, d)
        self.item_factors = torch.zeros((n_items, dim), dtype=torch.float32)  # (n_items, d)
        self.history: list[dict[str, float]] = []
        """Metrics of each iteration of the last :meth:`fit` (then of the refit's, prefixed)."""
        self.best_epoch: int | None = None
        """0-based iteration whose factors were validated (the last), None without validation."""

    @abstractmethod
    def estimator(self, train: TrainConfig, on_gpu: bool, num_threads: int) -> Any:
        """A fresh, seeded implicit estimator (``on_gpu``: its CUDA class) with ``fit(user_items,
        show_progress, callback)``, ``iterations`` and, once fitted, ``user_factors`` and
        ``item_factors`` (and ``to_cpu()`` on the GPU)."""

    def fit(
        self,
        features: FeatureSet,
        train: TrainConfig,
        on_epoch_end: EpochCallback | None = None,
        logger: RunLogger | None = None,
    ) -> ImplicitFactorization:
        """Fit the factors on the train split (see the class docstring); raises ModelError for an
        empty train split and ConfigError when a GPU is asked for that implicit cannot use."""
        self.check_fits(features)
        if features.train.empty:
            raise ModelError(f"the train split is empty; {self.name} needs at least one train interaction")
        history: list[dict[str, float]] = []

        def report(epoch: int, metrics: dict[str, float]) -> None:
            history.append(metrics)
            if on_epoch_end is not None:
                on_epoch_end(epoch, metrics)
            if logger is not None:
                logger.log_metrics({**metrics, "epoch": float(epoch)}, step=epoch)

        final, seconds = self._factorise(features, train, lambda epoch, s: report(epoch, {"epoch_seconds": s}))
        last = {"epoch_seconds": seconds}
        ndcg = self._validation_ndcg(features, train)
        if ndcg is not None:
            last[VALIDATION_METRIC] = ndcg
        report(final, last)
        self.history = history
        self.best_epoch = final if ndcg is not None else None
        if train.refit and self.best_epoch is not None:
            self._refit(features, train, on_epoch_end, logger)
        return self

    def _factorise(
        self, features: FeatureSet, train: TrainConfig, on_iteration: Callable[[int, float], None]
    ) -> tuple[int, float]:
        """Fit the factors on ``features``' train matrix (summed weights). Every iteration but the
        last goes to ``on_iteration(iteration, seconds)`` as it ends; returns the last's (0-based
        iteration, seconds), which the caller reports with the validation metric."""
        from threadpoolctl import threadpool_limits

        weights = features.matrix(schema.TRAIN)  # (n_users, n_items)
        weights.eliminate_zeros()
        with threadpool_limits(1, "blas"):  # implicit's threads each solve; a threaded BLAS inside them stalls
            estimator = self.estimator(train, implicit_on_gpu(train), torch.get_num_threads())
            final, last_seconds = estimator.iterations - 1, [0.0]

            def ended(iteration: int, seconds: float, *_: Any) -> None:
                if iteration < final:
                    on_iteration(iteration, seconds)
                else:
                    last_seconds[0] = seconds

            estimator.fit(weights, show_progress=False, callback=ended)
        fitted = estimator.to_cpu() if hasattr(estimator, "to_cpu") else estimator
        self.user_factors = torch.from_numpy(np.ascontiguousarray(fitted.user_factors, dtype=np.float32))
        self.item_factors = torch.from_numpy(np.ascontiguousarray(fitted.item_factors, dtype=np.float32))
        return final, last_seconds[0]

    def _validation_ndcg(self, features: FeatureSet, train: TrainConfig) -> float | None:
        """NDCG@10 on the validation split, as per-epoch validation measures it; None without users."""
        try:
            evaluator = SplitEvaluator.prepare(
                features, schema.VALIDATION, max_users=train.validation_users, seed=train.seed
            )
        except DataValidationError:
            return None
        return evaluator.evaluate(self, ks=(10,))["ndcg_at_10"]

    def _refit(
        self, features: FeatureSet, train: TrainConfig, on_epoch_end: EpochCallback | None, logger: RunLogger | None
    ) -> None:
        """``train.refit``: fresh factors on train + validation, the same iterations."""
        first, selected, offset = self.history, self.best_epoch, len(self.history)

        def shifted(epoch: int, metrics: dict[str, float]) -> None:
            if on_epoch_end is not None:
                on_epoch_end(offset + epoch, {f"refit_{k}": v for k, v in metrics.items()})

        refit_logger = logger.continued(prefix="refit", epoch_offset=offset) if logger is not None else None
        final = train.model_copy(update={"refit": False})
        self.fit(features.with_validation_in_train(), final, on_epoch_end=shifted, logger=refit_logger)
        self.history = first + [{f"refit_{k}": v for k, v in h.items()} for h in self.history]
        self.best_epoch = selected

    def score_users(self, user_idx: torch.Tensor, history: UserHistory) -> torch.Tensor:
        """Scores (n, n_items) of the users ``user_idx``: their factors times every item's; ``history``
        is not read (ALS has no sequence)."""
        return self.user_factors[user_idx.cpu()] @ self.item_factors.T  # (n, d) @ (d, n_items)

    def item_vectors(self) -> np.ndarray:
        """A copy of the item factors (n_items, d), float32: what exact search and similar_items use."""
        return self.item_factors.numpy().copy()  # (n_items, d)

    def user_vectors(self, user_idx: np.ndarray, history: UserHistory) -> np.ndarray:
        """The factors (n, d) of the users ``user_idx``, so that ``user_vectors @ item_vectors.T`` are
        the scores."""
        return self.user_factors.numpy()[np.asarray(user_idx, dtype=np.int64)]  # (n, d)

    def state(self) -> dict[str, torch.Tensor]:
        """The fitted factors, cloned: everything :meth:`from_state` needs (saved as safetensors)."""
        return {"user_factors": self.user_factors.clone(), "item_factors": self.item_factors.clone()}

    @classmethod
    def from_state(
        cls, n_users: int, n_items: int, config: ModelConfig, state: dict[str, torch.Tensor]
    ) -> ImplicitFactorization:
        """A fitted model from :meth:`state`'s tensors; ModelError when one is missing or its shape
        does not match ``n_users``, ``n_items`` and one factor size."""
        missing = sorted(set(_STATE_KEYS) - set(state))
        if missing:
            raise ModelError(f"{cls.name} state lacks {missing}; it needs {list(_STATE_KEYS)}")
        users, items = (state[k].detach().cpu() for k in _STATE_KEYS)
        if users.ndim != 2 or items.ndim != 2 or users.shape[0] != n_users or items.shape != (n_items, users.shape[1]):
            raise ModelError(
                f"{cls.name} state needs 'user_factors' ({n_users}, d) and 'item_factors' ({n_items}, d), "
                f"got {tuple(users.shape)} and {tuple(items.shape)}"
            )
        model = cls(n_users, n_items, config)
        model.user_factors = users.to(torch.float32).contiguous().clone()
        model.item_factors = items.to(torch.float32).contiguous().clone()
        return model


class ALS(ImplicitFactorization):
    """The ``als`` model: implicit's ``AlternatingLeastSquares`` with ``model.embedding_dim``
    factors and the ``model.als`` settings (see the module docstring)."""

    name: ClassVar[str] = "als"

    def planned_epochs(self, train: TrainConfig) -> int:
        """``model.als.iterations``: ALS counts its passes there, not in ``train.epochs``."""
        return self.config.als.iterations

    def estimator(self, train: TrainConfig, on_gpu: bool, num_threads: int) -> Any:
        """implicit's ``AlternatingLeastSquares`` with this model's settings, seeded by ``train.seed``."""
        from implicit.als import AlternatingLeastSquares

        als = self.config.als
        return AlternatingLeastSquares(
            factors=self.config.embedding_dim,
            regularization=als.regularization,
            alpha=als.alpha,
            iterations=als.iterations,
            use_gpu=on_gpu,
            num_threads=num_threads,
            random_state=train.seed,
        )
