"""GPU check: bf16-mixed SASRec training on Beauty and the export's GPU search, in one short run.

    python benchmarks/gpu_check.py --beauty ../shared/datasets/amazon_beauty_s3rec_5core/Beauty.txt

Run by ``benchmarks/gpu_check.sh`` (which installs what is missing and runs the ``gpu`` tests
first) on a machine with one CUDA GPU; sized to finish in a few minutes. Two parts:

1. **Training**: SASRec with the quality benchmark's full-softmax settings (dim 64, 1 block,
   1 head, dropout 0.5, batch 128, lr 1e-3), ``bf16-mixed`` on the GPU, early-stopped on
   validation NDCG@10 (every 3 epochs, patience 6), at most ``--epochs``; prints seconds per
   training epoch and validation / test HR and NDCG@10 (test read once, after training).
2. **Export search**: ``InnerProductIndex`` on the GPU (the tensor path, fp32 and bf16 scans, the
   same certified results) against the peer a GPU user would write, ``torch.mm`` + history set to
   -inf + ``torch.topk`` per chunk, same vectors, same history masked, same k, numpy in and out.
   Each cell the median of 3 interleaved trials (spread printed), plus the fp32 / bf16 matrix-
   multiply bound measured in the run.

Ends with ``RESULT gpu=<name> sasrec_epoch_s=<x> beauty_ndcg10=<y> export_vs_torch_min=<z>
export_users_per_s_1m_k10=<u>`` (the worst export cell's ratio over every size, k and chunk; the
best chunk's rate at 1M x 100k, k = 10).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recsys_lib.config import FeaturesConfig, ModelConfig, TrainConfig  # noqa: E402
from recsys_lib.evaluation import evaluate_recommender  # noqa: E402
from recsys_lib.features import build_features  # noqa: E402
from recsys_lib.models import create_model  # noqa: E402
from recsys_lib.search.index import InnerProductIndex  # noqa: E402
from recsys_lib.sources.sequences import parse_sequences, sequence_tables  # noqa: E402

SEQUENTIAL = {"loss": "full_softmax", "n_negatives": 256, "n_layers": 1, "n_heads": 1, "dropout": 0.5}
TRAIN = {"batch_size": 128, "learning_rate": 1e-3, "weight_decay": 0.0, "validate_every": 3, "patience": 6}


def train_beauty(path: Path, epochs: int) -> dict[str, float]:
    tables = sequence_tables(parse_sequences(path.read_text(), path.name))
    features = build_features(tables.events, tables.items, FeaturesConfig(split="leave_one_out"))
    config = ModelConfig.model_validate({"name": "sasrec", "embedding_dim": 64, "sequential": SEQUENTIAL})
    train = TrainConfig.model_validate({"seed": 42, "epochs": epochs, **TRAIN})
    model = create_model(config, features.n_users, features.n_items)

    def progress(epoch: int, metrics: dict[str, float]) -> None:
        shown = " ".join(f"{k}={v:.4f}" for k, v in metrics.items())
        print(f"  sasrec epoch {epoch + 1}: {shown}", flush=True)

    started = time.perf_counter()
    model.fit(features, train, on_epoch_end=progress)
    fit_s = time.perf_counter() - started
    seconds = [h["epoch_seconds"] for h in model.history]
    val = max(h.get("val_ndcg_at_10", 0.0) for h in model.history)
    test = evaluate_recommender(model, features, ks=(10,))
    return {
        "epochs": len(seconds),
        "best_epoch": (model.best_epoch or 0) + 1,
        "epoch_s": statistics.median(seconds[1:] or seconds),  # the first pays for CUDA start-up
        "first_epoch_s": seconds[0],
        "fit_s": fit_s,
        "val_ndcg10": val,
        "test_hr10": test["hr_at_10"],
        "test_ndcg10": test["ndcg_at_10"],
    }


def vectors(n: int, dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32)


def history(n_users: int, n_items: int, per_user: int, seed: int) -> sp.csr_matrix:
    cols = np.random.default_rng(seed).integers(0, n_items, size=n_users * per_user, dtype=np.int32)
    indptr = np.arange(0, n_users * per_user + 1, per_user, dtype=np.int64)
    return sp.csr_matrix((np.ones(len(cols), np.float32), cols, indptr), shape=(n_users, n_items))


def torch_topk(items: torch.Tensor, users: np.ndarray, k: int, seen: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """The peer: one product, history to -inf, ``torch.topk``; numpy in and out like ours."""
    u = torch.from_numpy(users).cuda()
    scores = u @ items.T
    coo = seen.tocoo()
    scores[torch.from_numpy(coo.row).cuda().long(), torch.from_numpy(coo.col).cuda().long()] = -torch.inf
    val, idx = torch.topk(scores, k, dim=1)
    return idx.cpu().numpy(), val.cpu().numpy()


def timed(fn: Callable[[], None]) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - start


def matmul_tflops(dtype: torch.dtype, n: int = 8192) -> float:
    a = torch.randn(n, n, device="cuda", dtype=dtype)
    b = torch.randn(n, n, device="cuda", dtype=dtype)
    for _ in range(3):
        a @ b
    return 2 * n**3 * 10 / timed(lambda: [a @ b for _ in range(10)]) / 1e12


def export_cell(n_users: int, n_items: int, k: int, chunks: list[int], peer_chunk: int) -> list[dict[str, object]]:
    """One row per chunk size of ours, each against the same peer timings (all trials interleaved)."""
    users, item_vecs = vectors(n_users, 64, 1), vectors(n_items, 64, 2)
    seen = history(n_users, n_items, 20, 3)
    index = InnerProductIndex(item_vecs, device="cuda")
    items_gpu = torch.from_numpy(item_vecs).cuda()

    def ours(chunk: int) -> None:
        for lo in range(0, n_users, chunk):
            index.search(users[lo : lo + chunk], k, seen[lo : lo + chunk])

    def peer() -> None:
        for lo in range(0, n_users, peer_chunk):
            torch_topk(items_gpu, users[lo : lo + peer_chunk], k, seen[lo : lo + peer_chunk])

    probe = slice(0, min(n_users, 4096))  # same answer on a sample (ties aside)
    a = index.search(users[probe], k, seen[probe])[0]
    b = torch_topk(items_gpu, users[probe], k, seen[probe])[0]
    agree = float((a == b).mean())
    t_ours: dict[int, list[float]] = {c: [] for c in chunks}
    t_peer: list[float] = []
    for _trial in range(4):  # interleaved; the first is a warm-up (buffers, kernels) and not counted
        t_peer.append(timed(peer))
        for chunk in chunks:
            t_ours[chunk].append(timed(lambda c=chunk: ours(c)))
    index.release()
    peer_rate = n_users / statistics.median(t_peer[1:])
    peer_spread = (n_users / max(t_peer[1:]), n_users / min(t_peer[1:]))
    return [
        {
            "cell": f"{n_users:,} x {n_items:,}, k={k}",
            "chunk": chunk,
            "ours": n_users / statistics.median(t_ours[chunk][1:]),
            "ours_spread": (n_users / max(t_ours[chunk][1:]), n_users / min(t_ours[chunk][1:])),
            "peer": peer_rate,
            "peer_spread": peer_spread,
            "agree": agree,
            "path": index.path(k),
        }
        for chunk in chunks
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--beauty", type=Path, default=None, help="path to Beauty.txt (needed unless --skip-training)")
    parser.add_argument("--epochs", type=int, default=60, help="training epochs at most (early stopping applies)")
    parser.add_argument("--sizes", default="100000x20000,1000000x100000")
    parser.add_argument("--k", default="10,100")
    parser.add_argument(
        "--chunks", default="1024,8192", help="users per search call (export.chunk_size), comma separated"
    )
    parser.add_argument("--peer-chunk", type=int, default=8192, help="users per chunk for the torch peer")
    parser.add_argument("--skip-training", action="store_true", help="only the export search")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check", file=sys.stderr)
        return 1
    gpu = torch.cuda.get_device_name(0)
    print(f"# {gpu}, torch {torch.__version__}, CUDA {torch.version.cuda}, threads {torch.get_num_threads()}")
    fp32, bf16 = matmul_tflops(torch.float32), matmul_tflops(torch.bfloat16)
    tf32 = torch.backends.cuda.matmul.allow_tf32
    print(f"# square 8192 product: fp32 {fp32:.1f} TFLOP/s (tf32 allowed: {tf32}), bf16 {bf16:.1f} TFLOP/s")

    t = {"epoch_s": float("nan"), "test_ndcg10": float("nan")}
    if not args.skip_training:
        print("\n## SASRec on Beauty, bf16-mixed", flush=True)
        t = train_beauty(args.beauty, args.epochs)
        print(
            f"epochs {t['epochs']} (best {t['best_epoch']}), {t['epoch_s']:.2f} s/epoch (first {t['first_epoch_s']:.1f}"
            f" s), fit {t['fit_s']:.0f} s; val NDCG@10 {t['val_ndcg10']:.4f}; test HR@10 {t['test_hr10']:.4f}"
            f" NDCG@10 {t['test_ndcg10']:.4f}",
            flush=True,
        )

    print(f"\n## Export search on the GPU; the peer in chunks of {args.peer_chunk:,} users")
    print("(users/s, median of 3 interleaved trials, [min, max])")
    print("| users x items, k | our chunk | ours | torch mm+topk | ours / torch | fp32 bound | path | same items |")
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    cells = []
    for size in args.sizes.split(","):
        n_users, n_items = (int(x) for x in size.split("x"))
        for k in (int(x) for x in args.k.split(",")):
            for c in export_cell(n_users, n_items, k, [int(x) for x in args.chunks.split(",")], args.peer_chunk):
                bound = fp32 * 1e12 / (2 * n_items * 64)
                cells.append(c)
                lo, hi = c["ours_spread"]
                plo, phi = c["peer_spread"]
                print(
                    f"| {c['cell']} | {c['chunk']:,} | {c['ours']:,.0f} [{lo:,.0f}, {hi:,.0f}]"
                    f" | {c['peer']:,.0f} [{plo:,.0f}, {phi:,.0f}] | {c['ours'] / c['peer']:.2f} | {bound:,.0f}"
                    f" | {c['path']} | {c['agree']:.4f} |",
                    flush=True,
                )
    worst = min(c["ours"] / c["peer"] for c in cells)
    big = [c for c in cells if c["cell"].startswith("1,000,000 x 100,000, k=10")]
    big_rate = f"{max(c['ours'] for c in big):.0f}" if big else "na"
    name = gpu.replace(" ", "_")
    print(
        f"RESULT gpu={name} sasrec_epoch_s={t['epoch_s']:.2f} beauty_ndcg10={t['test_ndcg10']:.4f}"
        f" export_vs_torch_min={worst:.2f} export_users_per_s_1m_k10={big_rate}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
