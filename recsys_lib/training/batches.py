"""Seeded shuffling of in-memory tensors: whole batches are sliced at once, no per-row calls."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class ShuffledBatches(Sampler[torch.Tensor]):
    """Index tensors of ``batch_size`` rows from a fresh seeded permutation each epoch."""

    def __init__(self, n_rows: int, batch_size: int, seed: int):
        super().__init__()
        self.n_rows, self.batch_size = n_rows, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self) -> Iterator[torch.Tensor]:
        yield from torch.randperm(self.n_rows, generator=self.generator).split(self.batch_size)

    def __len__(self) -> int:
        return -(-self.n_rows // self.batch_size)
