"""A LightningModule whose validation metric follows a script, to test the loop around it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from recsys_lib.training import VALIDATION_METRIC, RecommenderModule


class ScriptedModule(RecommenderModule):
    """One linear weight trained by SGD; ``val_ndcg_at_10`` is ``script[i]`` at its i-th validation.
    ``snapshots[epoch]`` is the weight as that epoch's validation saw it."""

    def __init__(self, script: Sequence[float]):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.script = list(script)
        self.validated_epochs: list[int] = []
        self.snapshots: dict[int, torch.Tensor] = {}

    def training_step(self, batch: tuple[torch.Tensor], batch_idx: int) -> torch.Tensor:
        (x,) = batch
        loss = self.layer(x).pow(2).mean()
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        pass

    def on_validation_epoch_end(self) -> None:
        value = self.script[len(self.validated_epochs)]
        self.validated_epochs.append(self.current_epoch)
        self.snapshots[self.current_epoch] = self.layer.weight.detach().clone()
        self.log(VALIDATION_METRIC, torch.tensor(value, dtype=torch.float64))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.fixture
def scripted() -> Callable[[Sequence[float]], ScriptedModule]:
    """The :class:`ScriptedModule` class."""
    return ScriptedModule


@pytest.fixture
def loaders() -> tuple[DataLoader, DataLoader]:
    """(train: two batches of 4 rows, validation: one batch)."""
    train = TensorDataset(torch.randn(8, 2, generator=torch.Generator().manual_seed(0)))
    return DataLoader(train, batch_size=4), DataLoader(torch.zeros(1), batch_size=1)
