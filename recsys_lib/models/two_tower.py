"""Two-tower model: a history tower for the user, a content tower for the item (``two_tower``).

* item tower: mean of the item's hashed title-token embeddings + category + brand + price-bucket
  embeddings, plus its id embedding when the item had train interactions. In training each item's
  id embedding is hidden with probability ``two_tower.id_dropout``, so content alone must put an
  item in the right place: an item with no interactions yet is scored from its content only, and
  can be recommended to users whose history matches it;
* user tower: the running mean of the item-tower vectors of the user's recent items, through a
  residual MLP and a LayerNorm (position t sees items 1..t only).

Trained like the sequence models (next-item cross-entropy at every position, full or sampled
softmax, :class:`~recsys_lib.models.sequential.NextItemModule`); scored by dot product. A step
computes the item tower for the items it reads only (the history's and, with sampled softmax, the
targets and negatives), and with sampled softmax the id table takes row-sparse gradients: the
step's cost does not grow with the catalogue. Full softmax scores every item, so its step builds
every item's vector.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from recsys_lib import schema
from recsys_lib.errors import ModelError
from recsys_lib.features.content import ItemContent, encode_content
from recsys_lib.models.sequential import SequenceNet, SequenceRecommender

if TYPE_CHECKING:
    from recsys_lib.config import ModelConfig, TwoTowerConfig
    from recsys_lib.features import FeatureSet

_INIT_STD = 0.02
_CONTENT_BUFFERS = ("title_tokens", "title_offsets", "category", "brand", "price_bucket", "known")


class TwoTowerNet(SequenceNet):
    """Item content tower and history-mean user tower; content and known-item mask are buffers, so
    the ``state_dict`` alone rebuilds the model."""

    title_tokens: torch.Tensor  # buffers, see ItemContent
    title_offsets: torch.Tensor
    category: torch.Tensor
    brand: torch.Tensor
    price_bucket: torch.Tensor
    known: torch.Tensor  # (n_items,) bool: the item had train interactions
    title_ends: torch.Tensor  # (n_items,) end of each item's tokens; derived, not in the state

    def __init__(
        self,
        n_items: int,
        dim: int,
        content: ItemContent,
        known: np.ndarray,
        cfg: TwoTowerConfig,
        dropout: float,
        *,
        sparse: bool = False,
    ):
        super().__init__()
        self.n_items, self.id_dropout = n_items, cfg.id_dropout
        self.item_id = nn.Embedding(n_items, dim, sparse=sparse)
        self.title_embedding = nn.EmbeddingBag(cfg.title_buckets + 1, dim, mode="mean", padding_idx=0)
        self.category_embedding = nn.Embedding(cfg.category_buckets + 1, dim, padding_idx=0)
        self.brand_embedding = nn.Embedding(cfg.category_buckets + 1, dim, padding_idx=0)
        self.price_embedding = nn.Embedding(cfg.price_buckets + 1, dim, padding_idx=0)
        self.user_mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim))
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)
        for table in (
            self.item_id,
            self.title_embedding,
            self.category_embedding,
            self.brand_embedding,
            self.price_embedding,
        ):
            nn.init.normal_(table.weight, std=_INIT_STD)
            if table.padding_idx is not None:
                nn.init.zeros_(table.weight[table.padding_idx])
        fields = {
            "title_tokens": content.title_tokens,
            "title_offsets": content.title_offsets,
            "category": content.category,
            "brand": content.brand,
            "price_bucket": content.price_bucket,
        }
        for name, values in fields.items():
            self.register_buffer(name, torch.as_tensor(values, dtype=torch.int64))
        self.register_buffer("known", torch.as_tensor(known, dtype=torch.bool))  # (n_items,) had train interactions
        ends = np.append(np.asarray(content.title_offsets, dtype=np.int64)[1:], len(content.title_tokens))
        self.register_buffer("title_ends", torch.as_tensor(ends[:n_items], dtype=torch.int64), persistent=False)

    def row_sparse_table(self) -> torch.Tensor | None:
        """The id table, when it takes row-sparse gradients."""
        return self.item_id.weight if self.item_id.sparse else None

    def item_weights(self) -> torch.Tensor:
        """(n_items, dim) content vectors plus id vectors of known items (randomly hidden in training,
        with probability ``id_dropout``)."""
        content = self.title_embedding(self.title_tokens, self.title_offsets)  # (n_items, dim) token mean
        content = content + self.category_embedding(self.category) + self.brand_embedding(self.brand)
        content = content + self.price_embedding(self.price_bucket)
        if not self.training:
            vectors: torch.Tensor = content + self.item_id.weight * self.known.unsqueeze(-1)
            return vectors
        # items without interactions are no evidence: as negatives they would only teach their own
        # tokens to score low, so their vectors take part in the softmax without being trained
        content = torch.where(self.known.unsqueeze(-1), content, content.detach())
        use_id = self.known & (torch.rand(self.n_items, device=content.device) >= self.id_dropout)
        return content + self.item_id.weight * use_id.unsqueeze(-1)

    def tower(self, items: torch.Tensor) -> torch.Tensor:
        """(n,) item indices -> (n, dim): the rows :meth:`item_weights` has for them (the same
        content, id vectors and, in training, an id-dropout draw per row), computed for those
        items alone; the id rows are read as row-sparse gradients when the table is sparse."""
        starts, lengths = self.title_offsets[items], self.title_ends[items] - self.title_offsets[items]
        offsets = torch.cumsum(lengths, 0) - lengths  # each item's start among the gathered tokens
        total = int(lengths.sum())
        gathered = torch.arange(total, device=items.device)
        gathered = gathered + torch.repeat_interleave(starts - offsets, lengths, output_size=total)
        content = self.title_embedding(self.title_tokens[gathered], offsets)  # (n, dim) token mean
        content = content + self.category_embedding(self.category[items]) + self.brand_embedding(self.brand[items])
        content = content + self.price_embedding(self.price_bucket[items])
        known = self.known[items]
        use_id = known
        if self.training:
            content = torch.where(known.unsqueeze(-1), content, content.detach())  # see item_weights
            use_id = known & (torch.rand(len(items), device=content.device) >= self.id_dropout)
        rows = use_id.nonzero().squeeze(1)  # only these read an id row: no other row is touched
        ids = F.embedding(items[rows], self.item_id.weight, sparse=self.item_id.sparse)
        vectors: torch.Tensor = content.index_add(0, rows, ids.to(content.dtype))
        return vectors

    def item_lookup(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """Item indices (any shape; -1 for positions the loss drops: a zero vector) -> their
        :meth:`tower` vectors (..., dim), each distinct item computed once per call. Each call draws its own id dropout
        (targets and negatives apart, as the history's in :meth:`encode` always was)."""
        return self._lookup

    def _lookup(self, items: torch.Tensor) -> torch.Tensor:
        """-1 (padding) reads a zero vector and touches no row: no gradient reaches a real item for it."""
        flat = items.reshape(-1)
        present = flat >= 0
        out = self.item_id.weight.new_zeros((len(flat), self.item_id.embedding_dim))
        if bool(present.any()):
            distinct, where = torch.unique(flat[present], return_inverse=True)
            out[present] = self.tower(distinct)[where].to(out.dtype)
        return out.view(*items.shape, self.item_id.embedding_dim)  # (..., dim)

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        """seq (B, L) right-aligned, -1 padded -> (B, L, dim): the tower applied to the running mean
        of the item vectors up to each position (the item tower of the history's items only)."""
        present = (seq >= 0).unsqueeze(-1)  # (B, L, 1)
        x = self.drop(self._lookup(seq)) * present  # (B, L, dim)
        mean = x.cumsum(dim=1) / present.cumsum(dim=1).clamp(min=1)  # (B, L, dim) causal mean
        hidden: torch.Tensor = self.norm(mean + self.user_mlp(mean))
        return hidden


def _known_items(features: FeatureSet) -> np.ndarray:
    known = np.zeros(features.n_items, dtype=bool)
    known[features.train[schema.ITEM_IDX].to_numpy(np.int64)] = True
    return known


class TwoTower(SequenceRecommender):
    """The ``two_tower`` model (see the module docstring)."""

    name: ClassVar[str] = "two_tower"
    net: TwoTowerNet

    def __init__(self, n_users: int, n_items: int, config: ModelConfig):
        no_catalogue = pd.DataFrame({schema.ITEM_ID: np.arange(n_items).astype(str)})
        self.content = encode_content(no_catalogue, 1, 1, 1)  # every field missing until prepare()
        self.known = np.zeros(n_items, dtype=bool)
        super().__init__(n_users, n_items, config)

    def prepare(self, features: FeatureSet) -> None:
        """Encode the catalogue's content (hashed into the ``two_tower`` bucket counts) and mark the
        items with train interactions, both of which the network is built around."""
        tt = self.config.two_tower
        self.content = encode_content(features.items, tt.title_buckets, tt.category_buckets, tt.price_buckets)
        self.known = _known_items(features)

    def build_net(self) -> TwoTowerNet:
        """A :class:`TwoTowerNet` over the content and known-item mask of :meth:`prepare` (before
        it, every field is missing)."""
        cfg = self.config
        return TwoTowerNet(
            self.n_items,
            cfg.embedding_dim,
            self.content,
            self.known,
            cfg.two_tower,
            cfg.sequential.dropout,
            sparse=cfg.sequential.loss == "sampled_softmax" and cfg.sequential.row_sparse,
        )

    def prepare_state(self, state: dict[str, torch.Tensor]) -> None:
        """Rebuild the network around the catalogue content and known-item mask the state carries."""
        missing = [name for name in _CONTENT_BUFFERS if name not in state]
        if missing:
            raise ModelError(f"two_tower state lacks the content buffers {missing}")
        self.content = ItemContent(**{name: state[name].numpy() for name in _CONTENT_BUFFERS if name != "known"})
        self.known = state["known"].numpy()
        if len(self.known) != self.n_items or len(self.content.title_offsets) != self.n_items:
            raise ModelError(f"two_tower state describes {len(self.known)} items, not {self.n_items}")
        self.net = self.build_net()
