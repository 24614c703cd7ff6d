"""RowAdam is SparseAdam's update rule for row-sparse gradients and AdamW's for dense ones."""

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


def test_dense_gradients_take_adamw_steps_exactly():
    generator = torch.Generator().manual_seed(2)
    ours, reference = nn.Linear(6, 3), nn.Linear(6, 3)
    reference.load_state_dict(ours.state_dict())
    groups = [{"params": [ours.weight], "weight_decay": 0.1}, {"params": [ours.bias], "weight_decay": 0.0}]
    row_adam = RowAdam(groups, lr=0.05)
    adamw = torch.optim.AdamW(
        [{"params": [reference.weight], "weight_decay": 0.1}, {"params": [reference.bias], "weight_decay": 0.0}],
        lr=0.05,
    )
    for _ in range(20):
        x, y = torch.randn(8, 6, generator=generator), torch.randn(8, 3, generator=generator)
        for layer, optimizer in ((ours, row_adam), (reference, adamw)):
            optimizer.zero_grad()
            ((layer(x) - y) ** 2).sum().backward()
            optimizer.step()
    torch.testing.assert_close(ours.weight, reference.weight, rtol=0, atol=0)  # AdamW's CPU path, op for op
    torch.testing.assert_close(ours.bias, reference.bias, rtol=0, atol=0)


def test_one_optimizer_for_a_sparse_table_and_dense_layers_under_a_cosine_schedule():
    """The table moves as under SparseAdam, the layer as under AdamW, both at the scheduled rate."""
    generator = torch.Generator().manual_seed(3)
    table, layer = _tables(0), nn.Linear(4, 1)
    ref_table, ref_layer = _tables(0), nn.Linear(4, 1)
    ref_layer.load_state_dict(layer.state_dict())
    ours = RowAdam([{"params": [table.weight]}, {"params": list(layer.parameters()), "weight_decay": 0.1}], lr=0.05)
    sparse_adam = torch.optim.SparseAdam([ref_table.weight], lr=0.05)
    adamw = torch.optim.AdamW(ref_layer.parameters(), lr=0.05, weight_decay=0.1)
    schedules = [torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10) for o in (ours, sparse_adam, adamw)]
    for _ in range(10):
        rows = torch.randint(0, 20, (16,), generator=generator)
        y = torch.randn(16, 1, generator=generator)
        for t, lin, optimizers in ((table, layer, [ours]), (ref_table, ref_layer, [sparse_adam, adamw])):
            for optimizer in optimizers:
                optimizer.zero_grad()
            ((lin(t(rows)) - y) ** 2).sum().backward()
            for optimizer in optimizers:
                optimizer.step()
        for schedule in schedules:
            schedule.step()
    torch.testing.assert_close(table.weight, ref_table.weight, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(layer.weight, ref_layer.weight, rtol=1e-6, atol=1e-6)  # its inputs: the table
    assert ours.param_groups[0]["lr"] == adamw.param_groups[0]["lr"] < 0.05


def test_weight_decay_of_a_row_sparse_table_reaches_the_touched_rows_only():
    table = nn.Embedding(6, 2, sparse=True)
    nn.init.ones_(table.weight)
    before = table.weight.detach().clone()
    optimizer = RowAdam(table.parameters(), lr=0.1, weight_decay=0.5)
    table(torch.tensor([1, 4])).sum().backward()
    optimizer.step()
    moved = (table.weight.detach() != before).any(-1)
    assert moved.tolist() == [False, True, False, False, True, False]
    # decoupled decay first (1 - 0.1 * 0.5), then Adam's first step of lr along the gradient's sign
    torch.testing.assert_close(table.weight[1].detach(), torch.full((2,), 0.95 - 0.1), rtol=1e-5, atol=1e-5)


def test_bad_settings_are_refused_naming_them():
    with pytest.raises(ValueError, match="weight_decay"):
        RowAdam([torch.zeros(2, requires_grad=True)], lr=0.1, weight_decay=-1.0)
