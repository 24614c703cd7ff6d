import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping
from torch.utils.data import DataLoader, TensorDataset

from recsys_lib.config import TrainConfig
from recsys_lib.training import BestWeights, build_trainer
from recsys_lib.training.callbacks import ValidateLastEpoch


class _Tiny(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        (x,) = batch
        loss = self.layer(x).pow(2).mean()
        self.log("train_loss", loss, on_epoch=True, on_step=False)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_cpu_trainer_settings_without_validation():
    trainer = build_trainer(TrainConfig(epochs=3, accelerator="cpu"))
    assert trainer.max_epochs == 3
    assert trainer.precision == "32-true"
    assert trainer.logger is None
    assert trainer.checkpoint_callback is None
    assert trainer.num_sanity_val_steps == 0
    assert trainer.limit_val_batches == 0
    assert not trainer.progress_bar_callback


def test_validating_trainer_keeps_the_best_weights_and_stops_early(tmp_path):
    config = TrainConfig(epochs=5, accelerator="cpu", patience=2, validate_every=2)
    trainer = build_trainer(config, checkpoint_dir=tmp_path)
    assert isinstance(trainer.checkpoint_callback, BestWeights)
    assert trainer.checkpoint_callback.dirpath == str(tmp_path)
    assert trainer.checkpoint_callback.monitor == "val_ndcg_at_10" and trainer.checkpoint_callback.mode == "max"
    [stopping] = [c for c in trainer.callbacks if isinstance(c, EarlyStopping)]
    assert (stopping.monitor, stopping.mode, stopping.patience) == ("val_ndcg_at_10", "max", 2)
    assert any(isinstance(c, ValidateLastEpoch) for c in trainer.callbacks)
    assert trainer.check_val_every_n_epoch == 2
    assert trainer.limit_val_batches == 1.0
    without_patience = build_trainer(TrainConfig(accelerator="cpu"), checkpoint_dir=tmp_path)
    assert not [c for c in without_patience.callbacks if isinstance(c, EarlyStopping)]


def test_seeding_makes_the_next_draws_repeatable():
    build_trainer(TrainConfig(seed=11, accelerator="cpu"))
    first = torch.rand(3)
    build_trainer(TrainConfig(seed=11, accelerator="cpu"))
    assert torch.equal(first, torch.rand(3))


def test_fitting_writes_nothing_into_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    seen = []

    class Record(pl.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            seen.append(float(trainer.callback_metrics["train_loss"]))

    trainer = build_trainer(TrainConfig(epochs=2, accelerator="cpu"), callbacks=[Record()])
    trainer.fit(_Tiny(), DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=4))
    assert len(seen) == 2
    assert list(tmp_path.iterdir()) == []
    assert str(tmp_path) not in str(trainer.default_root_dir)
