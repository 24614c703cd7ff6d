"""Next-item training examples from user histories, shared by the sequence models and the two-tower.

Each user with at least two train items gives one example: their newest ``max_length + 1`` items,
read as inputs ``x_1..x_{n-1}`` and targets ``x_2..x_n`` (predict each next item from the prefix).
Sequences are right-aligned and padded on the left with -1 (inputs: no item; targets: no loss).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from recsys_lib.features import UserHistory
from recsys_lib.training.batches import LengthBucketBatches

PAD = -1


def next_item_examples(history: UserHistory, max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)``, both (n_examples, max_length) int64, -1 padded on the left."""
    users = np.flatnonzero(history.lengths() >= 2)
    window = history.padded(users, max_length + 1, pad=PAD)  # (n, L + 1) newest item last
    inputs, targets = window[:, :-1].copy(), window[:, 1:].copy()
    targets[inputs == PAD] = PAD  # a user's first item has no prefix to be predicted from
    return torch.from_numpy(inputs), torch.from_numpy(targets)


def next_item_loader(
    history: UserHistory, max_length: int, batch_size: int, seed: int
) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
    """Seeded batches of :func:`next_item_examples`, grouped by length and cut to the longest
    sequence of each batch (columns that are padding in every row are dropped)."""
    inputs, targets = next_item_examples(history, max_length)
    lengths = (targets != PAD).sum(dim=1)  # (n_examples,)
    sampler = LengthBucketBatches(lengths, batch_size, seed)

    def trimmed(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(int(lengths[rows].max()), 1)
        return inputs[rows, -width:], targets[rows, -width:]

    return DataLoader(_Rows(len(lengths), trimmed), sampler=sampler, batch_size=None, num_workers=0)


class _Rows(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """A dataset whose item for a tensor of row indices is ``take(rows)`` (one whole batch)."""

    def __init__(self, n_rows: int, take: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]):
        self.n_rows, self.take = n_rows, take

    def __len__(self) -> int:
        return self.n_rows

    def __getitem__(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.take(rows)


def recent_items(history: UserHistory, users: torch.Tensor, max_length: int) -> torch.Tensor:
    """(n, max_length) int64 newest history items of ``users``, right-aligned, -1 padded."""
    return torch.from_numpy(history.padded(users.cpu().numpy(), max_length, pad=PAD))
