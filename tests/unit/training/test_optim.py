"""RowAdam is AdamW for row-sparse gradients (the steps a row missed caught up when it is next read)
and for dense ones."""

import pytest
import torch
from torch import nn

from recsys_lib.training.optim import RowAdam, row_gradient


def _tables(seed: int, sparse: bool = True) -> nn.Embedding:
    table = nn.Embedding(50, 4, sparse=sparse)
    nn.init.normal_(table.weight, generator=torch.Generator().manual_seed(seed))
    return table


def _train_side_by_side(
    ours: RowAdam,
    table: nn.Embedding,
    adamw: torch.optim.Optimizer,
    reference: nn.Embedding,
    steps: int,
    schedules: tuple[object, ...] = (),
) -> None:
    """Both tables fit random targets on the rows a step draws (repeats; rows 20..49 never touched);
    ours catches a step's rows up before reading them, as the models do (the rest: the caller)."""
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        rows = torch.randint(0, 20, (8,), generator=generator)
        target = torch.randn(8, 4, generator=generator)
        ours.catch_up({table.weight: rows})
        for t, optimizer in ((table, ours), (reference, adamw)):
            optimizer.zero_grad()
            ((t(rows) - target) ** 2).sum().backward()
            optimizer.step()
        for schedule in schedules:
            schedule.step()  # type: ignore[attr-defined]


def test_a_row_sparse_table_follows_adamw_over_a_dense_one_rows_skipped_and_repeated():
    """Each step skips about two thirds of the touched rows: without the catch-up of the steps a row
    missed (its moments' decay and the momentum AdamW keeps moving it by) the tables part by ~lr."""
    ours, reference = _tables(0), _tables(0, sparse=False)
    row_adam = RowAdam(ours.parameters(), lr=0.05)
    _train_side_by_side(
        row_adam, ours, torch.optim.AdamW(reference.parameters(), lr=0.05, weight_decay=0.0), reference, 60
    )
    row_adam.catch_up()
    torch.testing.assert_close(ours.weight, reference.weight, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.weight[20:], _tables(0).weight[20:], rtol=0, atol=0)  # untouched rows
    assert row_adam.state[ours.weight]["last_step"].eq(60).all()  # every row is now at step 60


def test_with_weight_decay_every_row_decays_as_under_adamw_and_the_touched_ones_follow_it_closely():
    ours, reference = _tables(0), _tables(0, sparse=False)
    row_adam = RowAdam(ours.parameters(), lr=0.05, weight_decay=0.01)
    _train_side_by_side(
        row_adam, ours, torch.optim.AdamW(reference.parameters(), lr=0.05, weight_decay=0.01), reference, 60
    )
    row_adam.catch_up()
    # untouched rows: decay alone, exact; touched: the decay of a missed step's move is taken whole
    # (a relative error of about lr * weight_decay * 10 = 0.5% of it, here a strong decay)
    torch.testing.assert_close(ours.weight[20:], reference.weight[20:], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.weight[:20], reference.weight[:20], rtol=0, atol=2e-3)


def test_lazy_without_a_catch_up_is_not_adamw():
    """The reference above is sensitive: SparseAdam's lazy update (no catch-up) ends far from it."""
    lazy, reference = _tables(0), _tables(0, sparse=False)
    sparse_adam = torch.optim.SparseAdam(list(lazy.parameters()), lr=0.05)
    adamw = torch.optim.AdamW(reference.parameters(), lr=0.05, weight_decay=0.0)
    generator = torch.Generator().manual_seed(1)
    for _ in range(60):
        rows = torch.randint(0, 20, (8,), generator=generator)
        target = torch.randn(8, 4, generator=generator)
        for t, optimizer in ((lazy, sparse_adam), (reference, adamw)):
            optimizer.zero_grad()
            ((t(rows) - target) ** 2).sum().backward()
            optimizer.step()
    assert (lazy.weight - reference.weight).abs().max() > 0.05


def test_catching_up_twice_or_in_parts_changes_nothing_more():
    table = _tables(0)
    optimizer = RowAdam(table.parameters(), lr=0.05)
    for rows in (torch.tensor([1, 2]), torch.tensor([3]), torch.tensor([3]), torch.tensor([4])):
        optimizer.zero_grad()
        table(rows).sum().backward()
        optimizer.step()
    in_parts = _tables(0)
    in_parts.load_state_dict(table.state_dict())
    state = {k: v.clone() for k, v in optimizer.state[table.weight].items() if torch.is_tensor(v)}
    optimizer.catch_up({table.weight: torch.tensor([1, 1])})
    optimizer.catch_up()
    once = table.weight.detach().clone()
    optimizer.catch_up()
    torch.testing.assert_close(table.weight.detach(), once, rtol=0, atol=0)
    # the same from the saved state in one go
    table.weight.data.copy_(in_parts.weight)
    optimizer.state[table.weight].update(state)
    optimizer.catch_up()
    torch.testing.assert_close(table.weight.detach(), once, rtol=1e-6, atol=1e-7)


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
    """The table and the layer move as under AdamW at the scheduled rate (a row's missed steps are
    taken at the rate of its last step: close to AdamW's over a slow schedule)."""
    generator = torch.Generator().manual_seed(3)
    table, layer = _tables(0), nn.Linear(4, 1)
    ref_table, ref_layer = _tables(0, sparse=False), nn.Linear(4, 1)
    ref_layer.load_state_dict(layer.state_dict())
    ours = RowAdam([{"params": [table.weight]}, {"params": list(layer.parameters()), "weight_decay": 0.1}], lr=0.05)
    adamw = torch.optim.AdamW(
        [{"params": [ref_table.weight], "weight_decay": 0.0}, {"params": list(ref_layer.parameters())}],
        lr=0.05,
        weight_decay=0.1,
    )
    schedules = [torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=200) for o in (ours, adamw)]
    for _ in range(10):
        rows = torch.randint(0, 20, (16,), generator=generator)
        y = torch.randn(16, 1, generator=generator)
        ours.catch_up({table.weight: rows})
        for t, lin, optimizer in ((table, layer, ours), (ref_table, ref_layer, adamw)):
            optimizer.zero_grad()
            ((lin(t(rows)) - y) ** 2).sum().backward()
            optimizer.step()
        for schedule in schedules:
            schedule.step()
    ours.catch_up()
    # lr falls 0.6% over these steps; a row's missed steps are taken at its last step's rate
    torch.testing.assert_close(table.weight, ref_table.weight, rtol=0, atol=1e-3)
    torch.testing.assert_close(layer.weight, ref_layer.weight, rtol=0, atol=1e-3)  # its inputs: the table
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


def test_a_rate_of_zero_at_the_end_still_moves_the_rows_behind_at_the_rate_they_missed_steps_at():
    """A schedule that ends at lr 0 (cosine annealing) leaves the catch-up after the last step
    (before the weights are kept) to move the rows behind by what AdamW moved them meanwhile, at
    the rate of their own last step, not at 0."""
    ours, reference = _tables(0), _tables(0, sparse=False)
    row_adam = RowAdam(ours.parameters(), lr=0.05)
    _train_side_by_side(
        row_adam, ours, torch.optim.AdamW(reference.parameters(), lr=0.05, weight_decay=0.0), reference, 30
    )
    row_adam.param_groups[0]["lr"] = 0.0  # the schedule's end
    row_adam.catch_up()
    torch.testing.assert_close(ours.weight, reference.weight, rtol=1e-5, atol=1e-5)


def test_the_row_bookkeeping_survives_a_checkpoint_round_trip():
    table = _tables(0)
    optimizer = RowAdam(table.parameters(), lr=0.05)
    for rows in (torch.tensor([1, 2]), torch.tensor([3])):
        optimizer.zero_grad()
        table(rows).sum().backward()
        optimizer.step()
    restored = RowAdam(_tables(0).parameters(), lr=0.05)
    restored.load_state_dict(optimizer.state_dict())  # torch casts state tensors to the parameter's dtype
    state = next(iter(restored.state.values()))
    assert state["last_step"].dtype == torch.int64 and state["last_lr"].dtype == torch.float64
    assert state["last_step"].tolist()[:5] == [0, 1, 1, 2, 0]
    restored.catch_up({next(iter(restored.state)): torch.tensor([1, 4])})  # indexes with the steps


def test_betas_whose_missed_moves_would_not_fade_are_refused():
    with pytest.raises(ValueError, match=r"beta1 < sqrt\(beta2\)"):
        RowAdam([torch.zeros(2, requires_grad=True)], betas=(0.9, 0.8))
