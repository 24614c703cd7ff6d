"""The CUDA paths: exact search on the GPU, bf16-mixed training and ALS on implicit's GPU solver (marked
``gpu``; skipped without CUDA).

CI has no GPU, so these run where one is lent, through ``benchmarks/gpu_check.sh``.
"""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsys_lib.config import ModelConfig, TrainConfig
from recsys_lib.evaluation import evaluate_recommender
from recsys_lib.models import create_model
from recsys_lib.search.index import InnerProductIndex
from recsys_lib.training import build_trainer, uses_cuda

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def _vectors(n: int, dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32)


def _history(n_users: int, n_items: int, per_user: int, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    cols = rng.integers(0, n_items, size=n_users * per_user)
    rows = np.repeat(np.arange(n_users), per_user)
    return sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(n_users, n_items))


@pytest.mark.parametrize("k", [1, 10, 100])
def test_gpu_search_equals_a_full_sort(k):
    """The tensor path on CUDA returns a full sort's items (ties to the lower index), history masked."""
    items, users = _vectors(20_000, 64, 1), _vectors(300, 64, 2)
    seen = _history(300, 20_000, 20, 3)
    index = InnerProductIndex(items, device="cuda", precision="fp32")
    top, scores = index.search(users, k, seen)
    full = users.astype(np.float64) @ items.astype(np.float64).T
    full[seen.nonzero()] = -np.inf
    want = np.argsort(-full, axis=1, kind="stable")[:, :k]
    assert (top == want).mean() > 0.999  # float64 may break a near-tie the other way, rarely
    np.testing.assert_allclose(scores, np.take_along_axis(full, top, axis=1), rtol=1e-5, atol=1e-5)
    assert not seen[np.repeat(np.arange(300), k), top.ravel()].any()


@pytest.mark.parametrize("k", [10, 100])
def test_gpu_precisions_and_cpu_agree(k):
    """bf16 and fp32 scans on the GPU return the same bytes; the CPU returns the same items."""
    items, users = _vectors(30_000, 64, 4), _vectors(500, 64, 5)
    seen = _history(500, 30_000, 10, 6)
    bias = np.random.default_rng(7).standard_normal(30_000).astype(np.float32)
    fp32 = InnerProductIndex(items, bias, device="cuda", precision="fp32").search(users, k, seen)
    bf16 = InnerProductIndex(items, bias, device="cuda", precision="bf16").search(users, k, seen)
    cpu = InnerProductIndex(items, bias, device="cpu", precision="fp32").search(users, k, seen)
    np.testing.assert_array_equal(fp32[0], bf16[0])
    np.testing.assert_array_equal(fp32[1], bf16[1])
    np.testing.assert_array_equal(fp32[0], cpu[0])
    np.testing.assert_allclose(fp32[1], cpu[1], rtol=1e-6, atol=1e-6)


def test_trainer_uses_bf16_mixed_on_cuda():
    trainer = build_trainer(TrainConfig(epochs=1))
    assert uses_cuda(TrainConfig())
    assert trainer.precision == "bf16-mixed"
    assert trainer.accelerator.__class__.__name__ == "CUDAAccelerator"


@pytest.mark.parametrize("name", ["mf_bpr", "sasrec", "gru4rec", "two_tower"])
def test_models_train_on_cuda_and_beat_popularity(name, planted):
    """Each learned model trains under bf16-mixed on the GPU, stays finite, and learns the planted taste."""
    config = ModelConfig(name=name, embedding_dim=16)
    model = create_model(config, planted.n_users, planted.n_items)
    model.fit(planted, TrainConfig(epochs=8, batch_size=64, seed=0))
    popularity = create_model(ModelConfig(name="popularity"), planted.n_users, planted.n_items)
    popularity.fit(planted, TrainConfig())
    ours = evaluate_recommender(model, planted, ks=(10,))["ndcg_at_10"]
    base = evaluate_recommender(popularity, planted, ks=(10,))["ndcg_at_10"]
    assert np.isfinite(ours)
    assert ours > base, (name, ours, base)


def test_als_fits_on_the_gpu_and_learns_as_on_the_cpu(planted):
    """With implicit's GPU build (rmm-cu13 installed), ``train.accelerator = auto`` fits ALS on CUDA,
    and the factors learn the planted taste about as well as the CPU solver's."""
    implicit_gpu = pytest.importorskip("implicit.gpu")
    if not implicit_gpu.HAS_CUDA:
        pytest.skip("implicit has no GPU support here (pip install rmm-cu13)")
    from recsys_lib.models.als import implicit_on_gpu

    assert implicit_on_gpu(TrainConfig())
    config = ModelConfig(name="als", embedding_dim=16)
    ndcg = {}
    for accelerator in ("auto", "cpu"):
        model = create_model(config, planted.n_users, planted.n_items)
        model.fit(planted, TrainConfig(seed=0, accelerator=accelerator))
        assert model.item_vectors().shape[0] == planted.n_items
        ndcg[accelerator] = evaluate_recommender(model, planted, ks=(10,))["ndcg_at_10"]
    popularity = create_model(ModelConfig(name="popularity"), planted.n_users, planted.n_items)
    base = evaluate_recommender(popularity.fit(planted, TrainConfig()), planted, ks=(10,))["ndcg_at_10"]
    assert ndcg["auto"] > 1.5 * base, (ndcg, base)
    assert abs(ndcg["auto"] - ndcg["cpu"]) < 0.1, ndcg


def test_row_adam_on_cuda_follows_adamw_over_the_dense_table():
    """RowAdam's row bookkeeping and closed-form catch-up (float64 series on the device) on CUDA,
    side by side with AdamW over a dense CUDA table, as tests/unit/training/test_optim.py does on CPU."""
    from torch import nn

    from recsys_lib.training.optim import RowAdam

    tables = []
    for sparse in (True, False):
        table = nn.Embedding(50, 4, sparse=sparse).cuda()
        nn.init.normal_(table.weight, generator=torch.Generator("cuda").manual_seed(0))
        tables.append(table)
    ours, reference = tables
    row_adam = RowAdam(ours.parameters(), lr=0.05)
    adamw = torch.optim.AdamW(reference.parameters(), lr=0.05, weight_decay=0.0)
    generator = torch.Generator().manual_seed(1)
    for _ in range(60):
        rows = torch.randint(0, 20, (8,), generator=generator).cuda()
        target = torch.randn(8, 4, generator=generator).cuda()
        row_adam.catch_up({ours.weight: rows})
        for table, optimizer in ((ours, row_adam), (reference, adamw)):
            optimizer.zero_grad()
            ((table(rows) - target) ** 2).sum().backward()
            optimizer.step()
    row_adam.catch_up()
    torch.testing.assert_close(ours.weight, reference.weight, rtol=1e-5, atol=1e-5)
