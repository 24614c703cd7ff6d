"""Matrix factorisation trained with the BPR pairwise loss (Rendle et al., 2009).

score(u, i) = <p_u, q_i> + b_i. Each train pair (u, i) is a positive; a negative j is drawn
uniformly from the catalogue inside the training step (it may occasionally be a positive of u,
the usual BPR approximation). The loss per pair is ``-log sigmoid(s(u,i) - s(u,j))`` weighted by
the pair's interaction weight (normalised within the batch), so a purchase counts more than a
view while every pair is visited once per epoch. L2 decay applies to the rows a batch touches.

A step touches only the rows of its batch: their gradients (closed form) go to
:class:`~recsys_lib.training.optim.RowAdam`, which brings the rows a batch reads up to date
first (the AdamW steps they missed since they were last read, in closed form), so the tables train
as under AdamW while a step costs about the same at 20k and at 2M users; dense Adam would update
every row of both tables each step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from recsys_lib import schema
from recsys_lib.models.neural import NeuralRecommender
from recsys_lib.training import RecommenderModule
from recsys_lib.training.batches import ShuffledBatches
from recsys_lib.training.optim import RowAdam, row_gradient

if TYPE_CHECKING:
    import pandas as pd

    from recsys_lib.config import TrainConfig
    from recsys_lib.features import FeatureSet, UserHistory

_INIT_STD = 0.1


class MFNet(nn.Module):
    """User and item embeddings plus an item bias; the whole network (sparse gradients)."""

    def __init__(self, n_users: int, n_items: int, dim: int):
        super().__init__()
        self.user = nn.Embedding(n_users, dim, sparse=True)
        self.item = nn.Embedding(n_items, dim, sparse=True)
        self.item_bias = nn.Embedding(n_items, 1, sparse=True)
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Small normal embeddings, zero biases; ``generator`` makes the draw reproducible."""
        with torch.no_grad():
            nn.init.normal_(self.user.weight, std=_INIT_STD, generator=generator)
            nn.init.normal_(self.item.weight, std=_INIT_STD, generator=generator)
            nn.init.zeros_(self.item_bias.weight)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of (user, item) pairs: users (batch,), items (batch,) -> (batch,)."""
        scores: torch.Tensor = (self.user(users) * self.item(items)).sum(-1) + self.item_bias(items).squeeze(-1)
        return scores

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of every item: users (n,) -> (n, n_items)."""
        # (n, dim) @ (dim, n_items)
        scores: torch.Tensor = self.user(users) @ self.item.weight.T + self.item_bias.weight.T
        return scores


class BPRModule(RecommenderModule):
    """Loss, negative sampling, gradients and optimiser around an :class:`MFNet`.

    The BPR gradient has a closed form (Rendle et al., 2009, derive it for MF), so a step computes it
    for the rows of its batch directly and hands those rows to :class:`RowAdam` (Lightning's manual
    optimisation): no autograd graph, no sparse-tensor coalescing, and the same update as autograd
    followed by AdamW over dense tables (``tests/unit/models/test_mf_bpr.py`` checks both agree).
    """

    automatic_optimization = False

    def __init__(self, net: MFNet, learning_rate: float, weight_decay: float):
        super().__init__()
        self.net = net
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self._loss_sum = torch.zeros(())  # the epoch's sum of batch losses x batch sizes, logged at its end
        self._pairs = 0

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        """One manual-optimisation step on a batch of positive pairs ``(users, items, weights)``:
        draw one uniform negative per pair, set the closed-form row gradients and step
        :class:`RowAdam`. Logs the epoch's pair-weighted ``train_loss`` once, on its last batch.
        Returns the batch's loss."""
        users, pos, weight = batch  # (batch,) int32, (batch,) int32, (batch,) float32
        users, pos = users.long(), pos.long()
        neg = torch.randint(0, self.net.item.num_embeddings, pos.shape, device=pos.device)  # (batch,)
        optimizer = self.optimizers()
        if isinstance(optimizer, list):
            raise TypeError("MFBPR.configure_optimizers must return one optimizer")
        self.catch_up_batch(users, pos, neg)
        loss = self.loss_and_gradients(users, pos, neg, weight)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        # train_loss: the epoch's batch losses averaged by batch size, what self.log(on_epoch=True) on
        # every step reports, but logged once on the last batch: per-step logging cost a third of a step
        self._loss_sum = self._loss_sum.to(loss.device) + loss * len(users)
        self._pairs += len(users)
        if batch_idx + 1 == self.trainer.num_training_batches:
            self.log("train_loss", self._loss_sum / self._pairs, on_step=False, on_epoch=True)
            self._loss_sum, self._pairs = torch.zeros((), device=loss.device), 0
        return loss

    def catch_up_batch(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> None:
        """Bring the rows a batch reads to the current step (:meth:`RowAdam.catch_up`): what AdamW
        over the whole tables would hold."""
        items = torch.cat([pos, neg])
        net = self.net
        self.catch_up_tables({net.user.weight: users, net.item.weight: items, net.item_bias.weight: items})

    @torch.no_grad()
    def loss_and_gradients(
        self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        """The batch's loss; sets each table's ``.grad`` to the row gradients of that loss.

        loss = -sum_b w_b / sum(w) * log sigmoid(m_b) + decay * (|p_u|^2 + |q_i|^2 + |q_j|^2 +
        b_i^2 + b_j^2) summed over the batch / batch size, with m_b = s(u, i) - s(u, j).
        """
        net, n = self.net, len(users)
        items = torch.cat([pos, neg])  # (2 * batch,) positives, then negatives
        p = net.user.weight.index_select(0, users)  # (batch, dim)
        q = net.item.weight.index_select(0, items)  # (2 * batch, dim)
        bias = net.item_bias.weight.index_select(0, items)  # (2 * batch, 1)
        q_pos, q_neg = q.view(2, n, -1)  # (batch, dim) each
        bias_pos, bias_neg = bias.view(2, n, 1)
        margin = (p * (q_pos - q_neg)).sum(-1) + (bias_pos - bias_neg).squeeze(-1)  # (batch,)
        share = weight.float() / weight.float().sum()  # (batch,)
        decay = self.weight_decay / n
        loss = -(share * F.logsigmoid(margin)).sum() + decay * (
            p.square().sum() + q.square().sum() + bias.square().sum()
        )
        d_margin = (-share * torch.sigmoid(-margin)).unsqueeze(-1)  # (batch, 1) dloss / dmargin
        net.user.weight.grad = row_gradient(net.user.weight, users, d_margin * (q_pos - q_neg) + 2 * decay * p)
        d_q = torch.cat([d_margin * p, -d_margin * p]) + 2 * decay * q  # (2 * batch, dim)
        net.item.weight.grad = row_gradient(net.item.weight, items, d_q)
        d_bias = torch.cat([d_margin, -d_margin]) + 2 * decay * bias  # (2 * batch, 1)
        net.item_bias.weight.grad = row_gradient(net.item_bias.weight, items, d_bias)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """One :class:`RowAdam` over the three embedding tables; weight decay is in the loss, not here."""
        self.row_adam = RowAdam(list(self.net.parameters()), lr=self.learning_rate)
        return self.row_adam


def positive_pairs_loader(train: pd.DataFrame, batch_size: int, seed: int) -> DataLoader[tuple[torch.Tensor, ...]]:
    """Shuffled (users, items, weights) batches of train pairs, sliced from tensors (no per-row calls)."""
    data = TensorDataset(  # int32 indices (12 bytes per pair with the weight); a batch widens its own
        torch.tensor(train[schema.USER_IDX].to_numpy(np.int32)),  # (n_pairs,) copies: frames stay read-only
        torch.tensor(train[schema.ITEM_IDX].to_numpy(np.int32)),
        torch.tensor(train[schema.WEIGHT].to_numpy(np.float32)),
    )
    return DataLoader(data, sampler=ShuffledBatches(len(data), batch_size, seed), batch_size=None, num_workers=0)


class MatrixFactorizationBPR(NeuralRecommender):
    """The ``mf_bpr`` model: :class:`MFNet` trained by :class:`BPRModule` on the train pairs."""

    name: ClassVar[str] = "mf_bpr"
    net: MFNet

    def build_net(self) -> MFNet:
        """An :class:`MFNet` of ``n_users x n_items`` with ``embedding_dim`` dimensions, drawn from
        torch's current seed."""
        return MFNet(self.n_users, self.n_items, self.config.embedding_dim)

    def training_module(self, features: FeatureSet, train: TrainConfig) -> BPRModule:
        """A :class:`BPRModule` with the run's learning rate and weight decay."""
        return BPRModule(self.net, train.learning_rate, train.weight_decay)

    def train_loader(self, features: FeatureSet, train: TrainConfig) -> DataLoader[tuple[torch.Tensor, ...]]:
        """Every train pair once per epoch, shuffled from ``train.seed``, in batches of ``train.batch_size``."""
        return positive_pairs_loader(features.train, train.batch_size, train.seed)

    def score_users(self, user_idx: torch.Tensor, history: UserHistory) -> torch.Tensor:
        """``(n,) -> (n, n_items)`` float32 ``<p_u, q_i> + b_i`` on the network's device;
        ``history`` is not read (a user's vector is learned)."""
        with torch.no_grad():
            return self.net.score_all(user_idx.to(self.device)).float()  # (n, n_items)

    def item_vectors(self) -> np.ndarray:
        """``(n_items, dim)`` float32 copy of the item embeddings ``q``."""
        return self.net.item.weight.detach().cpu().float().numpy().copy()  # (n_items, dim)

    def item_bias(self) -> np.ndarray:
        """``(n_items,)`` float32 copy of the item biases ``b``, which :meth:`score_users` adds."""
        return self.net.item_bias.weight.detach().cpu().float().numpy().ravel().copy()  # (n_items,)

    def user_vectors(self, user_idx: np.ndarray, history: UserHistory) -> np.ndarray:
        """``(n, dim)`` float32 copy of the learned user embeddings ``p`` of ``user_idx``; ``history`` is not read."""
        return self.net.user.weight.detach().cpu().float().numpy()[np.asarray(user_idx, dtype=np.int64)]
