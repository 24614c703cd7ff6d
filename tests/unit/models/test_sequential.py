"""SASRec and GRU4Rec: next-item examples, length-bucketed batches, causality, learning order, and
sampled-softmax steps that touch only the item rows they read."""

import numpy as np
import pandas as pd
import pytest
import torch

from recsys_lib import schema
from recsys_lib.config import FeaturesConfig, ModelConfig, SequentialConfig, TrainConfig
from recsys_lib.evaluation import evaluate_recommender
from recsys_lib.features import FeatureSet, UserHistory, build_features
from recsys_lib.models import GRU4Rec, PopularityRecommender, SASRec
from recsys_lib.models.sequences import PAD, next_item_examples, next_item_loader
from recsys_lib.models.sequential import GRU4RecNet, NextItemModule, SASRecNet
from recsys_lib.training.batches import LengthBucketBatches
from recsys_lib.training.optim import RowAdam
from tests.unit.models.conftest import stepped


def _history(*sequences: list[int], n_items: int = 10) -> UserHistory:
    lengths = [len(s) for s in sequences]
    return UserHistory(
        np.r_[0, np.cumsum(lengths)].astype(np.int64), np.concatenate(sequences).astype(np.int64), n_items
    )


def test_examples_shift_each_sequence_by_one_and_pad_on_the_left():
    inputs, targets = next_item_examples(_history([1, 2, 3], [4], [5, 6, 7, 8, 9]), max_length=3)
    # the one-item user gives no example; the long one keeps its newest 4 items
    assert inputs.tolist() == [[PAD, 1, 2], [6, 7, 8]]
    assert targets.tolist() == [[PAD, 2, 3], [7, 8, 9]]


def test_length_buckets_cover_every_row_once_per_epoch_and_are_seeded():
    lengths = torch.tensor(np.random.default_rng(0).integers(1, 50, 1000))
    epochs = [list(LengthBucketBatches(lengths, 64, seed=5)) for _ in range(2)]
    for batches in epochs:
        assert sorted(torch.cat(batches).tolist()) == list(range(1000))
        assert len(batches) == len(LengthBucketBatches(lengths, 64, seed=5)) == 16
    assert [b.tolist() for b in epochs[0]] == [b.tolist() for b in list(LengthBucketBatches(lengths, 64, seed=5))]
    spread = np.mean([int(lengths[b].max() - lengths[b].min()) for b in epochs[0]])
    assert spread < 10  # vs ~46 for random batches of 64: batches hold rows of similar length


def test_loader_batches_are_cut_to_their_longest_sequence():
    history = _history([1, 2], [3, 4], [5, 6, 7, 8, 9, 1, 2])
    for inputs, targets in next_item_loader(history, max_length=6, batch_size=1, seed=0):
        assert inputs.shape == targets.shape
        assert (targets[:, 0] != PAD).any()  # no column of padding only


def _net(**kwargs) -> SASRecNet:
    torch.manual_seed(0)
    return SASRecNet(20, 16, SequentialConfig(max_length=8, n_heads=2, dropout=0.0, **kwargs)).eval()


@pytest.mark.parametrize("block", ["pre_norm", "ligr"])
def test_sasrec_is_causal_each_position_sees_only_older_items(block):
    net = _net(block=block)
    seq = torch.tensor([[3, 4, 5, 6, 7]])
    changed = torch.tensor([[3, 4, 5, 9, 1]])
    with torch.no_grad():
        a, b = net.encode(seq), net.encode(changed)
    torch.testing.assert_close(a[:, :3], b[:, :3])
    assert not torch.allclose(a[:, 3:], b[:, 3:])


@pytest.mark.parametrize("block", ["pre_norm", "ligr"])
def test_left_padding_does_not_change_the_newest_state(block):
    """Training cuts batches to their longest row; scoring pads to max_length: both must agree."""
    net = _net(block=block)
    with torch.no_grad():
        short = net.encode(torch.tensor([[2, 5, 11]]))[:, -1]
        padded = net.encode(torch.tensor([[PAD] * 5 + [2, 5, 11]]))[:, -1]
    torch.testing.assert_close(short, padded)


def _cyclic_shop(n_users: int = 150, n_items: int = 40, length: int = 12, seed: int = 0) -> FeatureSet:
    """Each user walks the catalogue in order from a random start (item i is followed by i + 1):
    only the order says what comes next; popularity is flat."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n_items, n_users)
    items = (starts[:, None] + np.arange(length)[None, :]) % n_items  # (n_users, length)
    events = pd.DataFrame(
        {
            schema.USER_ID: np.repeat([f"u{u:03d}" for u in range(n_users)], length),
            schema.ITEM_ID: [f"i{i:03d}" for i in items.ravel()],
            schema.EVENT_TYPE: schema.PURCHASE,
            schema.TIMESTAMP: pd.Timestamp("2024-01-01", tz="UTC")
            + pd.to_timedelta(np.tile(np.arange(length), n_users), "h"),
        }
    )
    return build_features(events, pd.DataFrame({schema.ITEM_ID: []}), FeaturesConfig(split="leave_one_out"))


@pytest.mark.parametrize(
    ("model_class", "block"),
    [(SASRec, "pre_norm"), (SASRec, "ligr"), (GRU4Rec, "pre_norm")],
    ids=["sasrec", "esasrec", "gru4rec"],
)
@pytest.mark.parametrize("loss", ["full_softmax", "sampled_softmax"])
def test_sequence_models_learn_what_comes_next(model_class, block, loss):
    features = _cyclic_shop()
    sequential = SequentialConfig(dropout=0.1, loss=loss, n_negatives=16, block=block)
    config = ModelConfig(name=model_class.name, embedding_dim=32, sequential=sequential)
    model = model_class(features.n_users, features.n_items, config)
    model.fit(features, TrainConfig(epochs=30, batch_size=32, learning_rate=0.01, seed=0))
    popularity = PopularityRecommender(features.n_users, features.n_items, ModelConfig(name="popularity"))
    baseline = evaluate_recommender(popularity.fit(features, TrainConfig()), features, ks=(1, 10))
    result = evaluate_recommender(model, features, ks=(1, 10))
    assert result["n_users_evaluated"] == features.n_users
    assert result["hr_at_1"] > 0.8 > baseline["hr_at_10"] + 0.4


def test_a_ligr_block_gates_its_residuals_and_has_a_swiglu_feed_forward():
    from recsys_lib.models.sequential import _LiGRBlock

    net = _net(block="ligr")
    [block] = net.blocks
    assert isinstance(block, _LiGRBlock)
    assert block.ff_in.weight.shape == (2 * 4 * 16, 16) and block.ff_out.bias is None
    with torch.no_grad():  # gates shut: the block passes its input through untouched
        for gate in (block.gate_attention, block.gate_ff):
            gate.weight.zero_()
            gate.bias.fill_(-1e4)
        x = torch.randn(2, 5, 16)
        allowed = torch.ones(2, 1, 5, 5, dtype=torch.bool)
        torch.testing.assert_close(block(x, allowed), x)


def test_refit_trains_the_selected_epochs_again_on_train_plus_validation():
    features = _cyclic_shop(n_users=60, n_items=20, length=8)
    moved = features.with_validation_in_train()
    assert len(moved.train) == len(features.train) + len(features.validation) and moved.validation.empty
    assert moved.test.equals(features.test)

    config = ModelConfig(name="sasrec", embedding_dim=16, sequential=SequentialConfig(dropout=0.1, n_negatives=8))
    seen: list[tuple[int, dict]] = []
    train = TrainConfig(epochs=4, batch_size=16, learning_rate=0.01, seed=0, validate_every=1, patience=2, refit=True)
    model = SASRec(features.n_users, features.n_items, config).fit(features, train, lambda e, m: seen.append((e, m)))
    first = [m for _, m in seen if "train_loss" in m]
    refit = [(e, m) for e, m in seen if "refit_train_loss" in m]
    assert len(refit) == model.best_epoch + 1 and [e for e, _ in refit] == list(range(len(first), len(seen)))
    assert not any("refit_val_ndcg_at_10" in m for _, m in refit)  # nothing left to validate on
    assert len(model.history) == len(seen)

    plain = SASRec(features.n_users, features.n_items, config).fit(features, train.model_copy(update={"refit": False}))
    assert not torch.equal(model.net.item_weights(), plain.net.item_weights())


_INPUTS = torch.tensor([[PAD, PAD, 3, 5], [7, 9, 11, 2]])
_TARGETS = torch.tensor([[PAD, 3, 5, 8], [9, 11, 2, 13]])  # a padded target: it must touch no row


def _sampled_net(net_class, *, sparse: bool, weight_decay: float = 0.1):
    torch.manual_seed(0)
    cfg = SequentialConfig(loss="sampled_softmax", n_negatives=4, dropout=0.0)
    net = net_class(1000, 8, cfg)
    net.item.sparse = sparse
    return NextItemModule(net, cfg, TrainConfig(learning_rate=0.01, weight_decay=weight_decay))


@pytest.mark.parametrize("net_class", [SASRecNet, GRU4RecNet], ids=["sasrec", "gru4rec"])
def test_a_sampled_softmax_step_moves_exactly_the_item_rows_it_read(net_class):
    """The item table's gradient is row-sparse (inputs, targets, negatives), so RowAdam updates
    those rows and leaves the rest of the catalogue as it was: the step's cost does not grow with it."""
    module = _sampled_net(net_class, sparse=True)
    net = module.net
    optimizer = module.configure_optimizers()
    assert isinstance(optimizer, RowAdam)
    before = net.item.weight.detach().clone()
    n_targets, negatives = stepped(module, optimizer, _INPUTS, _TARGETS)
    assert net.item.weight.grad.is_sparse
    moved = set(torch.nonzero((net.item.weight.detach() != before).any(-1)).ravel().tolist())
    read = {3, 5, 7, 9, 11, 2, 8, 13} | negatives
    assert n_targets == 7
    assert moved == read  # not row 0 (the padded target), not the padding row, nothing else
    assert net.item.weight[1000].abs().sum() == 0


@pytest.mark.parametrize("net_class", [SASRecNet, GRU4RecNet], ids=["sasrec", "gru4rec"])
def test_the_row_sparse_gradient_equals_the_dense_one(net_class):
    sparse, dense = _sampled_net(net_class, sparse=True), _sampled_net(net_class, sparse=False)
    losses = []
    for module in (sparse, dense):
        torch.manual_seed(1)  # the same negatives
        loss, _ = module.loss(_INPUTS, _TARGETS)
        loss.backward()
        losses.append(loss.detach())
    assert losses[0] == losses[1]
    assert not dense.net.item.weight.grad.is_sparse
    torch.testing.assert_close(sparse.net.item.weight.grad.to_dense(), dense.net.item.weight.grad)


@pytest.mark.parametrize(
    "cfg",
    [SequentialConfig(loss="full_softmax"), SequentialConfig(row_sparse=False)],
    ids=["full softmax", "sampled softmax, row_sparse off"],
)
@pytest.mark.parametrize("net_class", [SASRecNet, GRU4RecNet], ids=["sasrec", "gru4rec"])
def test_a_dense_item_table_and_adamw_where_asked_or_needed(net_class, cfg):
    """Full softmax scores every item (a dense gradient by nature); ``row_sparse: false`` asks for
    AdamW over every row with sampled softmax too."""
    module = NextItemModule(net_class(50, 8, cfg), cfg, TrainConfig())
    assert not module.net.item.sparse
    assert type(module.configure_optimizers()) is torch.optim.AdamW


@pytest.mark.parametrize("net_class", [SASRecNet, GRU4RecNet], ids=["sasrec", "gru4rec"])
def test_row_sparse_training_follows_adamw_over_the_whole_table(net_class):
    """Each step reads a few of the 1,000 rows; the rows it skips are caught up (RowAdam.catch_up)
    before they are read again and before evaluation, so training takes AdamW's path over the
    dense table."""
    sparse, dense = _sampled_net(net_class, sparse=True, weight_decay=0.0), _sampled_net(net_class, sparse=False)
    optimizers = (sparse.configure_optimizers(), torch.optim.AdamW(dense.net.parameters(), lr=0.01, weight_decay=0.0))
    generator = torch.Generator().manual_seed(2)
    for step in range(40):
        seq = torch.randint(0, 1000, (4, 6), generator=generator)
        for module, optimizer in zip((sparse, dense), optimizers, strict=True):
            torch.manual_seed(step)  # the same negatives
            optimizer.zero_grad()
            module.loss(seq[:, :-1], seq[:, 1:])[0].backward()
            optimizer.step()
    sparse.catch_up_tables()
    # 40 steps at lr 0.01: the missed steps' closed form is exact but for eps, up to 6e-5 here
    torch.testing.assert_close(sparse.net.item.weight, dense.net.item.weight, rtol=0, atol=1e-4)
    # the rest within 1e-3: SASRec's key bias gets only rounding noise as its gradient (softmax is
    # blind to it), which Adam scales to steps of lr, in both; every other weight is within 4e-6
    for (name, ours), theirs in zip(sparse.net.named_parameters(), dense.net.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-3, msg=name)


def test_validation_and_the_end_of_training_see_every_row_caught_up():
    module = _sampled_net(GRU4RecNet, sparse=True)
    optimizer = module.configure_optimizers()
    for _ in range(3):
        optimizer.zero_grad()
        stepped(module, optimizer, _INPUTS, _TARGETS)
    state = optimizer.state[module.net.item.weight]
    assert state["last_step"].lt(3).any()  # rows no step read are behind
    module.on_validation_epoch_start()
    assert state["last_step"].eq(3).all()
    before = module.net.item.weight.detach().clone()
    module.on_train_end()  # nothing behind: nothing moves
    assert torch.equal(module.net.item.weight.detach(), before)
