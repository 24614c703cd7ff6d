"""The two-tower model recommends an item nobody has interacted with yet, from its content."""

import numpy as np
import pandas as pd
import torch

from recsys_lib import schema
from recsys_lib.config import FeaturesConfig, ModelConfig, SequentialConfig, TrainConfig
from recsys_lib.features import build_features
from recsys_lib.models import MatrixFactorizationBPR, TwoTower
from tests.unit.models.conftest import planted_events, stepped

CATEGORY_WORDS = ["lipstick", "shampoo", "perfume", "nail"]


def _shop_with_a_new_item():
    """The planted shop (users loyal to one of 4 categories) with titles and a brand-new lipstick."""
    events, items = planted_events(200, 100, 4, events_per_user=30, loyalty=0.9, seed=0)
    category = items[schema.CATEGORY].str[1:].astype(int)
    items = items.assign(
        **{
            schema.TITLE: [f"{CATEGORY_WORDS[c]} shade {i}" for i, c in enumerate(category)],
            schema.PRICE: 5.0 + category,
        }
    )
    new = pd.DataFrame(
        {
            schema.ITEM_ID: ["new-lipstick"],
            schema.CATEGORY: ["c0"],
            schema.TITLE: ["lipstick glow"],
            schema.PRICE: [5.0],
        }
    )
    return build_features(events, pd.concat([items, new], ignore_index=True), FeaturesConfig())


def test_a_new_item_reaches_the_top_k_of_users_whose_history_matches_its_category():
    features = _shop_with_a_new_item()
    new = int(np.flatnonzero(features.item_ids == "new-lipstick")[0])
    assert new not in set(features.train[schema.ITEM_IDX])  # no interactions at all
    config = ModelConfig(name="two_tower", embedding_dim=32, sequential=SequentialConfig(dropout=0.1))
    model = TwoTower(features.n_users, features.n_items, config).fit(
        features, TrainConfig(epochs=15, batch_size=32, learning_rate=0.01, seed=0)
    )

    history = features.history("train", "validation", "test")
    users = np.arange(features.n_users)
    top, _ = model.recommend(users, 20, history, exclude=history.matrix())
    shown = (top == new).any(axis=1)  # (n_users,)
    loyal_to_c0 = np.array([int(u[1:]) % 4 == 0 for u in features.user_ids])
    assert shown[loyal_to_c0].mean() > 0.8  # lipstick shoppers see it in their top 20
    assert shown[~loyal_to_c0].mean() < 0.1  # others do not

    mf = MatrixFactorizationBPR(features.n_users, features.n_items, ModelConfig(embedding_dim=32))
    mf.fit(features, TrainConfig(epochs=5, seed=0))
    mf_top, _ = mf.recommend(users, 20, history, exclude=history.matrix())
    assert (mf_top == new).any(axis=1)[loyal_to_c0].mean() < 0.1  # a model of ids alone cannot


def test_the_state_carries_the_content_so_a_rebuilt_model_scores_alike():
    features = _shop_with_a_new_item()
    model = TwoTower(features.n_users, features.n_items, ModelConfig(name="two_tower", embedding_dim=16))
    model.fit(features, TrainConfig(epochs=1, seed=0))
    rebuilt = TwoTower.from_state(features.n_users, features.n_items, model.config, model.state())
    users, history = torch.arange(20), features.history()
    assert torch.equal(rebuilt.score_users(users, history), model.score_users(users, history))
    assert rebuilt.known.sum() == model.known.sum() < features.n_items


def _prepared(loss: str = "sampled_softmax") -> TwoTower:
    features = _shop_with_a_new_item()
    config = ModelConfig(
        name="two_tower", embedding_dim=8, sequential=SequentialConfig(loss=loss, n_negatives=4, dropout=0.0)
    )
    torch.manual_seed(0)
    model = TwoTower(features.n_users, features.n_items, config)
    model.prepare(features)
    model.net = model.build_net()
    return model


def test_the_tower_of_a_few_items_is_their_rows_of_the_whole_catalogues():
    """Scoring and a training step compute the item tower for the items they read only; in
    evaluation those vectors are the rows item_weights() builds for the whole catalogue."""
    net = _prepared().net.eval()
    items = torch.tensor([5, 0, 42, 5, len(net.known) - 1])  # the new item last: content only
    net.title_tokens[net.title_offsets[42]] = 0  # a missing title token: an empty bag on both paths
    torch.testing.assert_close(net.tower(items), net.item_weights()[items], rtol=0, atol=0)
    seq = torch.tensor([[-1, -1, 3, 5], [7, 9, 11, 2]])
    expected = net.item_weights()[seq.clamp(min=0)] * (seq >= 0).unsqueeze(-1)  # padding: a zero vector
    torch.testing.assert_close(net.item_lookup()(seq), expected, rtol=0, atol=0)
    assert net.item_lookup()(torch.empty(0, 4, dtype=torch.long)).shape == (0, 4, 8)  # no users: no vectors


def test_a_sampled_softmax_step_moves_exactly_the_id_rows_it_read():
    """With sampled softmax the id table's gradient is row-sparse and RowAdam moves only the rows
    of the step's history, targets and negatives; no item outside them is built by the tower."""
    from recsys_lib.models.sequential import NextItemModule
    from recsys_lib.training.optim import RowAdam

    model = _prepared()
    net = model.net.train()
    net.id_dropout = 0.0  # every known item's id row is read
    module = NextItemModule(net, model.config.sequential, TrainConfig(learning_rate=0.01, weight_decay=0.1))
    optimizer = module.configure_optimizers()
    assert isinstance(optimizer, RowAdam)
    towered: list[int] = []
    real_tower = net.tower
    net.tower = lambda items: towered.extend(items.tolist()) or real_tower(items)
    new = len(net.known) - 1  # no train interactions: read for its content, its id row never
    assert not net.known[new]
    inputs, targets = torch.tensor([[-1, -1, 3, 5], [7, 9, 11, 2]]), torch.tensor([[-1, 3, 5, 8], [9, 11, 2, new]])
    before = net.item_id.weight.detach().clone()
    _, negatives = stepped(module, optimizer, inputs, targets)
    assert net.item_id.weight.grad.is_sparse
    read = {3, 5, 7, 9, 11, 2, 8, new} | negatives
    assert set(towered) <= read  # padded positions read a zero vector, no item
    moved = set(torch.nonzero((net.item_id.weight.detach() != before).any(-1)).ravel().tolist())
    assert new in towered and new not in moved  # weight decay too reaches only the rows read
    assert moved == {i for i in read if net.known[i]}  # unknown items: content only


def test_full_softmax_keeps_a_dense_id_table():
    from recsys_lib.models.sequential import NextItemModule

    model = _prepared("full_softmax")
    assert not model.net.item_id.sparse
    module = NextItemModule(model.net, model.config.sequential, TrainConfig())
    assert isinstance(module.configure_optimizers(), torch.optim.AdamW)


def test_row_sparse_training_follows_adamw_over_the_whole_id_table():
    """The id rows a step skips are caught up before they are read again (RowAdam.catch_up), so the
    row-sparse id table trains on AdamW's path over the dense one."""
    from recsys_lib.models.sequential import NextItemModule

    modules, optimizers = [], []
    for sparse in (True, False):
        net = _prepared().net.train()
        net.item_id.sparse = sparse
        module = NextItemModule(net, SequentialConfig(n_negatives=4), TrainConfig(learning_rate=0.01, weight_decay=0.0))
        modules.append(module)
        optimizers.append(module.configure_optimizers())
    assert isinstance(optimizers[1], torch.optim.AdamW)
    generator = torch.Generator().manual_seed(2)
    n_items = len(modules[0].net.known)
    for step in range(30):
        seq = torch.randint(0, n_items, (4, 6), generator=generator)
        for module, optimizer in zip(modules, optimizers, strict=True):
            torch.manual_seed(step)  # the same negatives and id dropout
            optimizer.zero_grad()
            module.loss(seq[:, :-1], seq[:, 1:])[0].backward()
            optimizer.step()
    modules[0].catch_up_tables()
    sparse_net, dense_net = (m.net for m in modules)
    assert sparse_net.item_id.weight.grad is None or sparse_net.item_id.weight.grad.is_sparse
    for (name, ours), theirs in zip(sparse_net.named_parameters(), dense_net.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-4, msg=name)  # eps in the closed form
