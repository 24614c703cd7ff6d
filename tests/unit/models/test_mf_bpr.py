import dataclasses

import numpy as np
import torch

from recsys_lib.config import ModelConfig, TrainConfig
from recsys_lib.evaluation import evaluate_recommender
from recsys_lib.models import MatrixFactorizationBPR, PopularityRecommender
from recsys_lib.models.mf_bpr import MFNet


def _fit(features, seed: int, epochs: int = 3, **kwargs) -> MatrixFactorizationBPR:
    model = MatrixFactorizationBPR(features.n_users, features.n_items, ModelConfig(embedding_dim=16))
    return model.fit(features, TrainConfig(epochs=epochs, batch_size=128, seed=seed), **kwargs)


def test_network_scores_pairs_and_full_rows_consistently():
    net = MFNet(n_users=3, n_items=5, dim=4)
    net.reset_parameters(torch.Generator().manual_seed(0))
    users, items = torch.tensor([0, 2, 1]), torch.tensor([4, 0, 3])
    full = net.score_all(users)  # (3, 5)
    assert full.shape == (3, 5)
    torch.testing.assert_close(net(users, items), full[torch.arange(3), items])


def test_same_seed_gives_identical_scores_and_another_seed_does_not(small):
    users = torch.arange(small.n_users)
    first, second, other = (_fit(small, seed).score_users(users, small.history()) for seed in (7, 7, 8))
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


def test_on_epoch_end_reports_loss_and_validation_ndcg_once_per_epoch(small):
    calls = []
    model = _fit(small, seed=1, epochs=4, on_epoch_end=lambda epoch, metrics: calls.append((epoch, metrics)))
    assert [epoch for epoch, _ in calls] == [0, 1, 2, 3]
    for _, metrics in calls:
        assert set(metrics) == {"train_loss", "epoch_seconds", "val_ndcg_at_10"}
        assert metrics["train_loss"] > 0 and 0 <= metrics["val_ndcg_at_10"] <= 1
    assert calls[-1][1]["train_loss"] < calls[0][1]["train_loss"]
    assert model.history == [metrics for _, metrics in calls]


def test_item_vectors_are_the_item_embeddings(small):
    model = _fit(small, seed=1, epochs=1)
    vectors = model.item_vectors()
    assert vectors.shape == (small.n_items, 16)
    np.testing.assert_array_equal(vectors, model.state()["item.weight"].numpy())


def test_default_hyperparameters_beat_popularity_on_planted_preferences(planted):
    popularity = PopularityRecommender(planted.n_users, planted.n_items, ModelConfig(name="popularity"))
    mf = MatrixFactorizationBPR(planted.n_users, planted.n_items, ModelConfig())  # dim 64
    baseline = evaluate_recommender(popularity.fit(planted, TrainConfig()), planted, ks=(10,))
    result = evaluate_recommender(mf.fit(planted, TrainConfig()), planted, ks=(10,))  # 20 epochs, lr 0.01
    assert result["n_users_evaluated"] == baseline["n_users_evaluated"] > 50
    assert result["ndcg_at_10"] > 2 * baseline["ndcg_at_10"]
    assert result["ndcg_at_10"] > baseline["ndcg_at_10"] + 0.15


def test_empty_validation_split_skips_validation(small):
    no_validation = dataclasses.replace(small, validation=small.validation.iloc[:0])
    calls = []
    _fit(no_validation, seed=1, epochs=2, on_epoch_end=lambda epoch, metrics: calls.append(set(metrics)))
    assert calls == [{"train_loss", "epoch_seconds"}] * 2


def test_closed_form_step_equals_autograd_with_adamw_over_dense_tables():
    """BPRModule's hand-written gradients + RowAdam (rows caught up before a batch reads them) move
    the weights as autograd's gradients of the same loss + torch's AdamW over dense tables, which
    moves every row every step."""
    from torch.nn import functional as F

    from recsys_lib.models.mf_bpr import BPRModule

    ours, reference = MFNet(40, 12, 8), MFNet(40, 12, 8)
    ours.reset_parameters(torch.Generator().manual_seed(0))
    reference.load_state_dict(ours.state_dict())
    for table in (reference.user, reference.item, reference.item_bias):
        table.sparse = False
    module = BPRModule(ours, learning_rate=0.05, weight_decay=0.1)
    row_adam = module.configure_optimizers()
    adamw = torch.optim.AdamW(list(reference.parameters()), lr=0.05, weight_decay=0.0)
    generator = torch.Generator().manual_seed(1)
    for _ in range(15):
        users, pos, neg = (torch.randint(0, n, (32,), generator=generator) for n in (40, 12, 12))
        weight = torch.rand(32, generator=generator) + 0.5
        module.catch_up_batch(users, pos, neg)
        loss = module.loss_and_gradients(users, pos, neg, weight)
        row_adam.step()
        row_adam.zero_grad(set_to_none=True)

        adamw.zero_grad()
        margin = reference(users, pos) - reference(users, neg)
        touched = [reference.user(users), reference.item(pos), reference.item(neg)]
        touched += [reference.item_bias(pos), reference.item_bias(neg)]
        expected = (
            -(weight * F.logsigmoid(margin)).sum() / weight.sum() + 0.1 * sum(t.pow(2).sum() for t in touched) / 32
        )
        expected.backward()
        adamw.step()
        torch.testing.assert_close(loss, expected.detach())
    module.catch_up_tables()
    for name, tensor in ours.state_dict().items():
        # missed steps summed in closed form (float64 series) round differently from AdamW's one by one
        torch.testing.assert_close(tensor, reference.state_dict()[name], rtol=1e-5, atol=5e-5, msg=name)
