"""Next-item training examples from user histories, shared by the sequence models and the two-tower.

Each user with at least two train items gives one example: their newest ``max_length + 1`` items,
read as inputs ``x_1..x_{n-1}`` and targets ``x_2..x_n`` (predict each next item from the prefix).
Sequences are right-aligned and padded on the left with -1 (inputs: no item; targets: no loss).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from recsys_lib.features import UserHistory
from recsys_lib.training.batches import ShuffledBatches

PAD = -1


def next_item_examples(history: UserHistory, max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)``, both (n_examples, max_length) int64, -1 padded on the left."""
    users = np.flatnonzero(history.lengths() >= 2)
    window = history.padded(users, max_length + 1, pad=PAD)  # (n, L + 1) newest item last
    inputs, targets = window[:, :-1].copy(), window[:, 1:].copy()
    inputs[targets == PAD] = PAD  # the oldest kept item is an input only if it has a successor
    return torch.from_numpy(inputs), torch.from_numpy(targets)


def next_item_loader(history: UserHistory, max_length: int, batch_size: int, seed: int) -> DataLoader:
    """Shuffled batches of :func:`next_item_examples` (a fresh seeded permutation each epoch)."""
    data = TensorDataset(*next_item_examples(history, max_length))
    return DataLoader(data, sampler=ShuffledBatches(len(data), batch_size, seed), batch_size=None, num_workers=0)


def recent_items(history: UserHistory, users: torch.Tensor, max_length: int) -> torch.Tensor:
    """(n, max_length) int64 newest history items of ``users``, right-aligned, -1 padded."""
    return torch.from_numpy(history.padded(users.cpu().numpy(), max_length, pad=PAD))
