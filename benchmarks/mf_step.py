"""MF-BPR optimiser step cost against the catalogue and user count: sparse gradients + SparseAdam
(what ``mf_bpr`` trains with) against dense gradients + Adam (what it trained with before).

    .venv/bin/python benchmarks/mf_step.py                   # 20k x 2k, 200k x 20k, 1M x 100k users x items

Same network, same batches (1,024 pairs, one uniform negative each), same loss (BPR + L2 on the
rows a batch touches), same threads (pinned and printed); one step = forward, backward, optimiser
step. Each figure is the median of 3 interleaved trials of 50 steps (after 5 warm-up steps), with
the spread. Ends with ``RESULT mf_step_ms_sparse_1m=<x> mf_step_ms_dense_1m=<y> step_growth_sparse=<z>``
(``step_growth``: the step-time ratio between the largest and the smallest size).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recsys_lib.models.mf_bpr import BPRModule, MFNet

BATCH = 1024


def dense_copy(net: MFNet) -> MFNet:
    """The same network with dense-gradient embeddings (the pre-sparse ``mf_bpr``)."""
    dense = MFNet(net.user.num_embeddings, net.item.num_embeddings, net.user.embedding_dim)
    for name in ("user", "item", "item_bias"):
        getattr(dense, name).sparse = False
    dense.load_state_dict(net.state_dict())
    return dense


def steps(module: BPRModule, optimizer: torch.optim.Optimizer, n_users: int, n: int, seed: int) -> float:
    """Seconds for ``n`` optimiser steps on random batches."""
    generator = torch.Generator().manual_seed(seed)
    n_items = module.net.item.num_embeddings
    batches = [
        (
            torch.randint(0, n_users, (BATCH,), generator=generator),
            torch.randint(0, n_items, (BATCH,), generator=generator),
            torch.ones(BATCH),
        )
        for _ in range(n)
    ]
    start = time.perf_counter()
    for i, batch in enumerate(batches):
        optimizer.zero_grad(set_to_none=True)
        loss = module.training_step(batch, i)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def measure(n_users: int, n_items: int, dim: int, trials: int, n_steps: int) -> dict[str, list[float]]:
    sparse_net = MFNet(n_users, n_items, dim)
    dense_net = dense_copy(sparse_net)
    sparse = BPRModule(sparse_net, 0.01, 1e-5)
    dense = BPRModule(dense_net, 0.01, 1e-5)
    for module in (sparse, dense):
        module.log = lambda *a, **k: None  # no Trainer attached
    optimizers = {
        "sparse": (sparse, torch.optim.SparseAdam(list(sparse_net.parameters()), lr=0.01)),
        "dense": (dense, torch.optim.Adam(dense_net.parameters(), lr=0.01)),
    }
    out: dict[str, list[float]] = {"sparse": [], "dense": []}
    for module, optimizer in optimizers.values():
        steps(module, optimizer, n_users, 5, seed=0)  # warm-up: Adam's state, allocator
    for trial in range(trials):  # interleaved
        for name, (module, optimizer) in optimizers.items():
            out[name].append(steps(module, optimizer, n_users, n_steps, seed=trial + 1) / n_steps * 1e3)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="20000x2000,200000x20000,1000000x100000")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, dim {args.dim}, batch {BATCH}")
    print(
        "| users x items | sparse + SparseAdam ms/step [min, max] | dense + Adam ms/step [min, max] | dense / sparse |"
    )
    print("|---|---:|---:|---:|")
    rows = []
    for size in args.sizes.split(","):
        n_users, n_items = (int(x) for x in size.split("x"))
        r = measure(n_users, n_items, args.dim, 3, args.steps)
        s, d = statistics.median(r["sparse"]), statistics.median(r["dense"])
        rows.append((n_users, n_items, s, d))
        print(
            f"| {n_users:,} x {n_items:,} | {s:.2f} [{min(r['sparse']):.2f}, {max(r['sparse']):.2f}]"
            f" | {d:.2f} [{min(r['dense']):.2f}, {max(r['dense']):.2f}] | {d / s:.1f} |",
            flush=True,
        )
    largest, smallest = rows[-1], rows[0]
    print(
        f"RESULT mf_step_ms_sparse_1m={largest[2]:.2f} mf_step_ms_dense_1m={largest[3]:.2f}"
        f" step_growth_sparse={largest[2] / smallest[2]:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
