"""Every learned model trains in Lightning's own loop: its validation metric is in
``trainer.callback_metrics`` for any callback, it is the evaluation protocol's NDCG@10, the best
epoch's weights are the ones kept, and the checkpoints behind them are removed."""

from __future__ import annotations

import tempfile
from typing import ClassVar

import pytest
import pytorch_lightning as pl

from recsys_lib import schema
from recsys_lib.config import ModelConfig, SequentialConfig, TrainConfig
from recsys_lib.evaluation.evaluate import SplitEvaluator
from recsys_lib.models import create_model

LEARNED = ["mf_bpr", "sasrec", "gru4rec", "two_tower"]


class SeenByACallback(pl.Callback):
    """A user's callback (``train.callbacks``): the validation metric after each validation."""

    values: ClassVar[list[float]] = []

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        SeenByACallback.values.append(float(trainer.callback_metrics["val_ndcg_at_10"]))


def _model(name: str, features):
    config = ModelConfig(name=name, embedding_dim=8, sequential=SequentialConfig(dropout=0.1, n_negatives=8))
    return create_model(config, features.n_users, features.n_items)


@pytest.mark.parametrize("name", LEARNED)
def test_callbacks_see_the_validation_metric_and_the_best_epoch_is_kept(name, planted, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the fit's checkpoints go
    SeenByACallback.values = []
    callback = f"{SeenByACallback.__module__}:SeenByACallback"
    train = TrainConfig(epochs=4, batch_size=64, seed=4, validation_users=60, accelerator="cpu", callbacks=(callback,))
    model = _model(name, planted).fit(planted, train)

    validated = [h["val_ndcg_at_10"] for h in model.history]
    assert SeenByACallback.values == validated and len(validated) == 4
    assert model.best_epoch == validated.index(max(validated))  # the first of equal bests
    evaluator = SplitEvaluator.prepare(planted, schema.VALIDATION, max_users=60, seed=4)
    assert evaluator.evaluate(model, ks=(10,))["ndcg_at_10"] == pytest.approx(max(validated), abs=1e-12)
    assert list(tmp_path.iterdir()) == []  # the checkpoints' folder is gone


def test_validation_every_second_epoch_and_after_the_last(planted):
    train = TrainConfig(epochs=5, batch_size=64, seed=1, validate_every=2, accelerator="cpu")
    model = _model("mf_bpr", planted).fit(planted, train)
    assert ["val_ndcg_at_10" in h for h in model.history] == [False, True, False, True, True]
    assert model.best_epoch in (1, 3, 4)
