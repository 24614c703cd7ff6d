"""Sequence models: read the user's recent items in order and predict the next one.

* ``sasrec``: causal self-attention over the sequence (Kang & McAuley, 2018), pre-LayerNorm or
  LiGR blocks (``sequential.block``; LiGR with sampled softmax is eSASRec, Tikhonovich et al., 2025);
* ``gru4rec``: a GRU over the sequence (Hidasi et al., 2016).

Both encode a sequence into one hidden vector per position and score items by the dot product with
the item embeddings (tied input and output embeddings). Training is next-item prediction at every
position with cross-entropy over the whole catalogue (``full_softmax``, what makes SASRec strong in
full-ranking evaluation) or over the target plus uniform negatives drawn per sequence
(``sampled_softmax``, whose cost does not grow with the catalogue).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recsys_lib.models.neural import NeuralRecommender
from recsys_lib.models.sequences import PAD, next_item_loader, recent_items
from recsys_lib.training import RecommenderModule
from recsys_lib.training.optim import RowAdam

if TYPE_CHECKING:
    from torch.utils.data import DataLoader

    from recsys_lib.config import SequentialConfig, TrainConfig
    from recsys_lib.features import FeatureSet, UserHistory

_INIT_STD = 0.02


class SequenceNet(nn.Module):
    """A network that reads item sequences: one hidden vector per position, scored against the
    item vectors by dot product (what :class:`NextItemModule` trains and the recommender serves)."""

    n_items: int

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        """seq (B, L) item indices, right-aligned, -1 padded -> hidden states (B, L, dim)."""
        raise NotImplementedError

    def item_weights(self) -> torch.Tensor:
        """(n_items, dim) item vectors the hidden states are scored against."""
        raise NotImplementedError

    def row_sparse_table(self) -> torch.Tensor | None:
        """The id table whose gradients are row-sparse, indexed by item (None: no such table)."""
        return None

    def item_lookup(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """For a training step that scores a few items (sampled softmax): a function from item
        indices (any shape; -1 reads some row, for positions the loss drops) to their vectors
        (..., dim), all from one draw of :meth:`item_weights`."""
        weights = self.item_weights()
        return lambda items: weights[items.clamp(min=0)]


class _ItemTableNet(SequenceNet):
    """A sequence network whose item vectors are the rows of one id table (tied input and output
    embeddings; the last row is padding). With ``sparse``, a step's gradient reaches the table's
    rows as a row-sparse tensor holding only the rows it read (inputs, targets, sampled negatives),
    so :class:`~recsys_lib.training.optim.RowAdam` updates those rows and the step's cost does not
    grow with the catalogue."""

    def __init__(self, n_items: int, dim: int, *, sparse: bool):
        super().__init__()
        self.n_items = n_items
        self.item = nn.Embedding(n_items + 1, dim, padding_idx=n_items, sparse=sparse)

    def _init_items(self) -> None:
        """Draw the item rows (after the layers a subclass builds: seeded weights stay as they were)."""
        nn.init.normal_(self.item.weight, std=_INIT_STD)
        with torch.no_grad():
            self.item.weight[self.n_items].zero_()

    def row_sparse_table(self) -> torch.Tensor | None:
        """The item table, when it takes row-sparse gradients."""
        return self.item.weight if self.item.sparse else None

    def item_weights(self) -> torch.Tensor:
        """``(n_items, dim)`` item vectors (tied input and output embeddings), without the padding row."""
        return self.item.weight[: self.n_items]

    def item_lookup(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """Item indices -> their rows of the table (row-sparse gradients when the table is sparse);
        -1 reads the zero padding row, which no gradient reaches (no item row is touched for it)."""
        table, sparse, pad = self.item.weight, self.item.sparse, self.n_items
        return lambda items: F.embedding(items.masked_fill(items < 0, pad), table, padding_idx=pad, sparse=sparse)


class _AttentionBlock(nn.Module):
    """What every transformer block here shares: pre-LayerNorm masked multi-head self-attention."""

    def __init__(self, dim: int, n_heads: int, dropout: float):
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.norm_attention = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm_ff = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def _attend(self, normed: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """Masked multi-head self-attention of the normalised stream (B, L, dim) -> (B, L, dim)."""
        b, length, dim = normed.shape
        q, k, v = self.qkv(normed).view(b, length, 3, self.n_heads, dim // self.n_heads).unbind(2)
        attended = F.scaled_dot_product_attention(  # (B, heads, L, dim / heads)
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            attn_mask=allowed,
            dropout_p=self.dropout if self.training else 0.0,
        )
        out: torch.Tensor = self.out(attended.transpose(1, 2).reshape(b, length, dim))
        return out

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """x (B, L, dim); allowed (B, 1, L, L) bool, True where query i may attend to key j."""
        raise NotImplementedError


class _Block(_AttentionBlock):
    """Pre-LayerNorm transformer block: masked self-attention, then a GELU feed-forward, each
    added to the stream by a plain residual."""

    def __init__(self, dim: int, n_heads: int, dropout: float):
        super().__init__(dim, n_heads, dropout)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self._attend(self.norm_attention(x), allowed))
        out: torch.Tensor = x + self.drop(self.ff(self.norm_ff(x)))
        return out


class _LiGRBlock(_AttentionBlock):
    """LiGR block (Borisyuk et al., 2025; the layer of eSASRec): pre-LayerNorm attention and a
    SwiGLU feed-forward, each added to the stream through a learned sigmoid gate of the block's
    input instead of a plain residual, so a block can pass its input through untouched."""

    def __init__(self, dim: int, n_heads: int, dropout: float):
        super().__init__(dim, n_heads, dropout)
        hidden = 4 * dim
        self.ff_in = nn.Linear(dim, 2 * hidden, bias=False)  # SwiGLU: value and gate halves
        self.ff_out = nn.Linear(hidden, dim, bias=False)
        self.gate_attention = nn.Linear(dim, dim)
        self.gate_ff = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        x = x + torch.sigmoid(self.gate_attention(x)) * self.drop(self._attend(self.norm_attention(x), allowed))
        value, gate = self.ff_in(self.norm_ff(x)).chunk(2, dim=-1)
        ff = self.ff_out(self.drop(F.silu(gate) * value))
        out: torch.Tensor = x + torch.sigmoid(self.gate_ff(x)) * self.drop(ff)
        return out


_BLOCKS: dict[str, type[_AttentionBlock]] = {"pre_norm": _Block, "ligr": _LiGRBlock}


class SASRecNet(_ItemTableNet):
    """Item + position embeddings, causal transformer blocks, final LayerNorm."""

    def __init__(self, n_items: int, dim: int, cfg: SequentialConfig):
        super().__init__(n_items, dim, sparse=cfg.loss == "sampled_softmax" and cfg.row_sparse)
        self.dim = dim
        self.position = nn.Embedding(cfg.max_length, dim)
        self.drop = nn.Dropout(cfg.dropout)
        block = _BLOCKS[cfg.block]
        self.blocks = nn.ModuleList(block(dim, cfg.n_heads, cfg.dropout) for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(dim)
        self._init_items()
        nn.init.normal_(self.position.weight, std=_INIT_STD)

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        """seq (B, L) item indices, right-aligned, -1 padded -> hidden states (B, L, dim)."""
        pad = seq < 0  # (B, L)
        length = seq.shape[1]
        positions = torch.arange(length, device=seq.device)
        x = self.item(seq.masked_fill(pad, self.n_items)) * math.sqrt(self.dim)
        x = x + self.position(positions + self.position.num_embeddings - length)  # newest = last position
        x = self.drop(x) * ~pad.unsqueeze(-1)
        causal = positions[None, :] <= positions[:, None]  # (L, L) key j <= query i
        # a padded query attends only to itself, so no row of the mask is empty (no NaN)
        allowed = (causal & ~pad[:, None, :]) | torch.eye(length, dtype=torch.bool, device=seq.device)
        allowed = allowed.unsqueeze(1)  # (B, 1, L, L)
        for block in self.blocks:
            x = block(x, allowed) * ~pad.unsqueeze(-1)
        hidden: torch.Tensor = self.norm(x)
        return hidden


class GRU4RecNet(_ItemTableNet):
    """Item embeddings, a GRU over the sequence, a projection back to the embedding space."""

    def __init__(self, n_items: int, dim: int, cfg: SequentialConfig):
        super().__init__(n_items, dim, sparse=cfg.loss == "sampled_softmax" and cfg.row_sparse)
        self.drop = nn.Dropout(cfg.dropout)
        self.gru = nn.GRU(dim, dim, num_layers=cfg.n_layers, batch_first=True)
        self.project = nn.Linear(dim, dim)
        self._init_items()

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        """seq (B, L), right-aligned, -1 padded -> (B, L, dim); the left padding feeds zero vectors."""
        x = self.drop(self.item(seq.masked_fill(seq < 0, self.n_items)))  # (B, L, dim)
        hidden, _ = self.gru(x)
        projected: torch.Tensor = self.project(self.drop(hidden))
        return projected


class NextItemModule(RecommenderModule):
    """Next-item cross-entropy at every non-padded position, full or sampled softmax; AdamW (RowAdam
    for a row-sparse item table)."""

    def __init__(self, net: SequenceNet, cfg: SequentialConfig, train: TrainConfig):
        super().__init__()
        self.net, self.cfg, self.train_cfg = net, cfg, train

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """:meth:`loss` of ``(inputs, targets)``; logs ``train_loss`` per epoch."""
        loss, n_targets = self.loss(*batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=n_targets)
        return loss

    def loss(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Cross-entropy of the next item at every non-padded position of ``inputs``/``targets``
        (B, L), -1 padded, over the catalogue or the sampled negatives per ``sequential.loss``;
        returns it with the number of positions it averages over."""
        valid = targets != PAD  # (B, L) positions with a next item to predict
        self._before_reading(inputs, targets)
        hidden = self.net.encode(inputs)  # (B, L, dim)
        if self.cfg.loss == "full_softmax":
            logits = hidden[valid] @ self.net.item_weights().T  # (N, n_items)
            target = targets[valid]  # (N,)
        else:
            logits, target = self._sampled_logits(hidden, targets, self.net.item_lookup())
            logits, target = logits[valid], target[valid]  # (N, 1 + n_negatives), (N,)
        loss = F.cross_entropy(logits.float(), target, label_smoothing=self.cfg.label_smoothing)
        return loss, len(target)

    def _sampled_logits(
        self, hidden: torch.Tensor, targets: torch.Tensor, lookup: Callable[[torch.Tensor], torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits of the target (column 0) and of ``n_negatives`` uniform negatives drawn per
        sequence and shared by its positions; a negative that is the target is masked out.

        Per-sequence draws reach ~every item each step (batch x n_negatives samples) at a fifth
        of the cost of per-position draws, and learn as fast per epoch on Beauty; one draw shared by
        the whole batch is cheaper still but learned ~2.5x slower per epoch there.
        """
        b = hidden.shape[0]
        negatives = torch.randint(0, self.net.n_items, (b, self.cfg.n_negatives), device=hidden.device)  # (B, K)
        self._before_reading(negatives)
        positive = (hidden * lookup(targets)).sum(-1, keepdim=True)  # (B, L, 1); padded targets dropped later
        negative = hidden @ lookup(negatives).transpose(1, 2)  # (B, L, dim) @ (B, dim, K) -> (B, L, K)
        negative = negative.masked_fill(negatives[:, None, :] == targets[:, :, None], -torch.inf)
        return torch.cat([positive, negative], dim=-1), torch.zeros_like(targets)

    def _before_reading(self, *items: torch.Tensor) -> None:
        """Bring the row-sparse table's rows for ``items`` (-1 padded) up to the current step, so the
        step reads what AdamW's table would hold (:meth:`RowAdam.catch_up`)."""
        table = self.net.row_sparse_table()
        if self.row_adam is not None and table is not None:
            read = torch.cat([i.reshape(-1) for i in items])
            self.catch_up_tables({table: read[read >= 0]})

    def configure_optimizers(self) -> Any:
        """AdamW with weight decay on the weight matrices only, or, when the item table takes
        row-sparse gradients (sampled softmax), :class:`RowAdam`: AdamW too, paying only for the
        table rows a step reads (:meth:`loss` catches them up first). Optional per-step cosine decay."""
        decay = [p for n, p in self.net.named_parameters() if p.ndim >= 2 and "norm" not in n]
        rest = [p for n, p in self.net.named_parameters() if not (p.ndim >= 2 and "norm" not in n)]
        groups = [{"params": decay, "weight_decay": self.train_cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
        # sparse COO gradients rule out gradient clipping and torch.compile, which nothing here uses
        row_sparse = any(isinstance(m, nn.Embedding) and m.sparse for m in self.net.modules())
        self.row_adam = RowAdam(groups, lr=self.train_cfg.learning_rate) if row_sparse else None
        optimizer = self.row_adam or torch.optim.AdamW(groups, lr=self.train_cfg.learning_rate)
        if self.train_cfg.lr_schedule == "constant":
            return optimizer
        steps = max(int(self.trainer.estimated_stepping_batches), 1)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


class SequenceRecommender(NeuralRecommender):
    """Scoring and training shared by the sequence models; subclasses pick the network."""

    scores_from_history: ClassVar[bool] = True
    net: SequenceNet

    def training_module(self, features: FeatureSet, train: TrainConfig) -> NextItemModule:
        """A :class:`NextItemModule` over this network with the ``sequential`` settings."""
        return NextItemModule(self.net, self.config.sequential, train)

    def train_loader(self, features: FeatureSet, train: TrainConfig) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
        """Next-item examples from every user with at least two train items (their newest
        ``sequential.max_length + 1``), batched by length and shuffled from ``train.seed``."""
        return next_item_loader(features.history(), self.config.sequential.max_length, train.batch_size, train.seed)

    def _last_hidden(self, user_idx: torch.Tensor, history: UserHistory) -> torch.Tensor:
        seq = recent_items(history, user_idx, self.config.sequential.max_length).to(self.device)  # (n, L)
        return self.net.encode(seq)[:, -1]  # (n, dim) state after the newest item

    def score_users(self, user_idx: torch.Tensor, history: UserHistory) -> torch.Tensor:
        """``(n,) -> (n, n_items)`` float32: the hidden state after each user's newest
        ``max_length`` items of ``history`` against every item vector; a user without history is
        scored from padding alone."""
        with torch.no_grad():
            return (self._last_hidden(user_idx, history) @ self.net.item_weights().T).float()  # (n, n_items)

    def item_vectors(self) -> np.ndarray:
        """``(n_items, dim)`` float32 copy of the item vectors the hidden states are scored against."""
        return self.net.item_weights().detach().cpu().float().numpy().copy()  # (n_items, dim)

    def user_vectors(self, user_idx: np.ndarray, history: UserHistory) -> np.ndarray:
        """``(n, dim)`` float32: each user's hidden state after the newest items of ``history``."""
        with torch.no_grad():
            users = torch.as_tensor(np.asarray(user_idx, dtype=np.int64))
            return self._last_hidden(users, history).cpu().float().numpy()  # (n, dim)


class SASRec(SequenceRecommender):
    """The ``sasrec`` model (see the module docstring)."""

    name: ClassVar[str] = "sasrec"

    def build_net(self) -> SASRecNet:
        """A :class:`SASRecNet` of ``n_items`` items with ``embedding_dim`` dimensions and the
        ``sequential`` settings."""
        return SASRecNet(self.n_items, self.config.embedding_dim, self.config.sequential)


class GRU4Rec(SequenceRecommender):
    """The ``gru4rec`` model (see the module docstring)."""

    name: ClassVar[str] = "gru4rec"

    def build_net(self) -> GRU4RecNet:
        """A :class:`GRU4RecNet` of ``n_items`` items with ``embedding_dim`` dimensions and the
        ``sequential`` settings."""
        return GRU4RecNet(self.n_items, self.config.embedding_dim, self.config.sequential)
