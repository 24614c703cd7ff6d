"""RowAdam is SparseAdam's update rule: same parameters after the same sparse gradients."""

import pytest
import torch
from torch import nn

from recsys_lib.training.optim import RowAdam, row_gradient


def _tables(seed: int) -> nn.Embedding:
    table = nn.Embedding(50, 4, sparse=True)
    nn.init.normal_(table.weight, generator=torch.Generator().manual_seed(seed))
    return table


def test_matches_sparse_adam_on_embedding_gradients_with_repeated_rows():
    ours, reference = _tables(0), _tables(0)
    row_adam = RowAdam(ours.parameters(), lr=0.05)
    sparse_adam = torch.optim.SparseAdam(list(reference.parameters()), lr=0.05)
    generator = torch.Generator().manual_seed(1)
    for _ in range(20):
        rows = torch.randint(0, 20, (16,), generator=generator)  # repeats, and rows 20..49 never touched
        target = torch.randn(16, 4, generator=generator)
        for table, optimizer in ((ours, row_adam), (reference, sparse_adam)):
            optimizer.zero_grad()
            ((table(rows) - target) ** 2).sum().backward()
            optimizer.step()
    torch.testing.assert_close(ours.weight, reference.weight, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ours.weight[20:], _tables(0).weight[20:], rtol=0, atol=0)  # untouched rows


def test_row_gradient_sums_repeated_rows():
    table = torch.zeros(5, 2, requires_grad=True)
    table.grad = row_gradient(table, torch.tensor([3, 1, 3]), torch.ones(3, 2))
    optimizer = RowAdam([table], lr=0.1)
    optimizer.step()
    moved = (table.detach() != 0).any(-1)
    assert moved.tolist() == [False, True, False, True, False]
    torch.testing.assert_close(optimizer.state[table]["exp_avg"][3], torch.full((2,), 0.2))  # (1 - 0.9) * 2


def test_dense_gradient_is_refused():
    table = torch.zeros(5, 2, requires_grad=True)
    table.grad = torch.ones(5, 2)
    with pytest.raises(RuntimeError, match="sparse"):
        RowAdam([table], lr=0.1).step()
