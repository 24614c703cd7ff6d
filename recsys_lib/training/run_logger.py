"""Lightning's MLflow logger, writing into a run that the caller opened and will close."""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Mapping
from typing import Any

from pytorch_lightning.loggers import MLFlowLogger
from pytorch_lightning.loggers.logger import rank_zero_experiment


class RunLogger(MLFlowLogger):
    """:class:`~pytorch_lightning.loggers.MLFlowLogger` into an existing MLflow run (``run_id``),
    such as the one :mod:`recsys_lib.pipelines.train` opens for its parameters, model and tests.

    It differs from its parent in five ways, each because the run is not the logger's own:

    * it never ends the run: the parent marks it FINISHED when ``fit`` returns, but the caller has
      more to log (the model, test metrics) and ends it itself, FAILED if a later step fails;
    * every metric is logged with its epoch as the step (0-based, plus ``epoch_offset``), not the
      optimiser step: every metric here is per epoch, and the epoch is the x-axis a reader compares
      models on whatever their batch counts (Lightning adds ``epoch`` to each epoch-end record; it
      becomes the step rather than a metric of its own);
    * ``prefix`` joins with ``_`` (``refit_train_loss``), the library's metric naming;
    * it leaves MLflow's process-wide tracking URI alone (the parent sets it to its own on first
      use), so code running later in the process still sees the server its environment names;
    * it logs no hyperparameters: the owner logs the whole configuration as the run's parameters.

    The tracking server is the explicit ``tracking_uri``: the parent's default is read from the
    environment when Lightning is imported, not when the logger is built.
    """

    LOGGER_JOIN_CHAR = "_"

    def __init__(self, tracking_uri: str, run_id: str, *, prefix: str = "", epoch_offset: int = 0):
        super().__init__(tracking_uri=tracking_uri, run_id=run_id, prefix=prefix)
        self.target = (tracking_uri, run_id)
        self.epoch_offset = epoch_offset

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The MLflow client of ``tracking_uri`` (what the parent returns, without its
        ``mlflow.set_tracking_uri``)."""
        if not self._initialized:
            self._experiment_id = self._mlflow_client.get_run(self.target[1]).info.experiment_id
            self._initialized = True
        return self._mlflow_client

    def continued(self, *, prefix: str, epoch_offset: int) -> RunLogger:
        """A logger into the same run whose metrics carry ``prefix`` and start at step ``epoch_offset``
        (the refit after model selection continues the first fit's curve this way)."""
        return RunLogger(*self.target, prefix=prefix, epoch_offset=epoch_offset)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log ``metrics`` at step ``epoch + epoch_offset`` when Lightning passes ``epoch`` among
        them (``epoch`` itself is not logged), else at ``step``."""
        values = dict(metrics)
        epoch = values.pop("epoch", None)
        if epoch is not None:
            step = int(epoch) + self.epoch_offset
        super().log_metrics(values, step=step)

    def finalize(self, status: str = "success") -> None:
        """Leave the run open: its owner ends it."""

    def log_hyperparams(self, params: dict[str, Any] | Namespace) -> None:
        """Nothing: the owner logs the whole configuration as the run's parameters."""
