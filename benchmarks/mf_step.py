"""MF-BPR optimiser step cost against the catalogue and user count, for the three ways ``mf_bpr``
has stepped: closed-form row gradients + RowAdam (today: the batch's rows caught up to AdamW's
state, then stepped), autograd's sparse embedding gradients + torch's SparseAdam (before), dense
gradients + Adam (the first version).

    .venv/bin/python benchmarks/mf_step.py       # 20k x 2k, 200k x 20k, 2M x 200k users x items

Same network, same batches (1,024 pairs, one uniform negative each), same loss (BPR + L2 on the
rows a batch touches), same threads (pinned and printed); one step = gradients + optimiser step,
no Lightning loop around it. Each figure is the median of 3 interleaved trials of 50 steps (after
5 warm-up steps; the order alternates between trials), with the spread. Dense Adam is skipped above
1M users (seconds per step). Ends with
``RESULT mf_step_ms_rows_largest=<x> mf_step_ms_sparse_adam_largest=<y> step_growth_rows=<z>``
(``step_growth``: the step-time ratio between the largest and the smallest size).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import interleaved_ms, spread
from recsys_lib.models.mf_bpr import BPRModule, MFNet

BATCH = 1024
LR, DECAY = 0.01, 1e-5
DENSE_MAX_USERS = 1_000_000
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def autograd_loss(net: MFNet, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, weight: torch.Tensor):
    """The loss as mf_bpr wrote it before the closed form: autograd through the embeddings."""
    margin = net(users, pos) - net(users, neg)
    touched = [net.user(users), net.item(pos), net.item(neg), net.item_bias(pos), net.item_bias(neg)]
    l2 = sum(t.pow(2).sum() for t in touched) / len(users)
    return -(weight * F.logsigmoid(margin)).sum() / weight.sum() + DECAY * l2


def variants(n_users: int, n_items: int, dim: int) -> dict[str, Callable[[Batch], None]]:
    """name -> one training step on a batch, each on its own copy of the same initial network."""
    rows_net = MFNet(n_users, n_items, dim)
    module = BPRModule(rows_net, LR, DECAY)
    row_adam = module.configure_optimizers()

    def rows(batch: Batch) -> None:  # what BPRModule.training_step runs, without Lightning
        module.catch_up_batch(*batch[:3])
        module.loss_and_gradients(*batch)
        row_adam.step()
        row_adam.zero_grad(set_to_none=True)

    def autograd(net: MFNet, optimizer: torch.optim.Optimizer) -> Callable[[Batch], None]:
        def step(batch: Batch) -> None:
            optimizer.zero_grad(set_to_none=True)
            autograd_loss(net, *batch).backward()
            optimizer.step()

        return step

    sparse_net = MFNet(n_users, n_items, dim)
    sparse_net.load_state_dict(rows_net.state_dict())
    out = {
        "rows": rows,
        "sparse_adam": autograd(sparse_net, torch.optim.SparseAdam(list(sparse_net.parameters()), lr=LR)),
    }
    if n_users <= DENSE_MAX_USERS:
        dense_net = MFNet(n_users, n_items, dim)
        for name in ("user", "item", "item_bias"):
            getattr(dense_net, name).sparse = False
        dense_net.load_state_dict(rows_net.state_dict())
        out["dense_adam"] = autograd(dense_net, torch.optim.Adam(dense_net.parameters(), lr=LR))
    return out


def batches(n_users: int, n_items: int, n: int, seed: int) -> list[Batch]:
    generator = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randint(0, n_users, (BATCH,), generator=generator),
            torch.randint(0, n_items, (BATCH,), generator=generator),
            torch.randint(0, n_items, (BATCH,), generator=generator),
            torch.ones(BATCH),
        )
        for _ in range(n)
    ]


def measure(n_users: int, n_items: int, dim: int, trials: int, n_steps: int) -> dict[str, list[float]]:
    return interleaved_ms(
        variants(n_users, n_items, dim),
        lambda trial: batches(n_users, n_items, n_steps, seed=trial + 1),
        trials,
        batches(n_users, n_items, 5, seed=0),
    )


def _cell(values: list[float] | None) -> str:
    return spread(values, digits=2) if values else "not run"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="20000x2000,200000x20000,2000000x200000")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, dim {args.dim}, batch {BATCH}")
    print(
        "| users x items | row gradients + RowAdam ms/step [min, max] | autograd + SparseAdam | dense + Adam"
        " | SparseAdam / rows |"
    )
    print("|---|---:|---:|---:|---:|")
    rows = []
    for size in args.sizes.split(","):
        n_users, n_items = (int(x) for x in size.split("x"))
        r = measure(n_users, n_items, args.dim, 3, args.steps)
        ours, before = statistics.median(r["rows"]), statistics.median(r["sparse_adam"])
        rows.append((ours, before))
        print(
            f"| {n_users:,} x {n_items:,} | {_cell(r['rows'])} | {_cell(r['sparse_adam'])}"
            f" | {_cell(r.get('dense_adam'))} | {before / ours:.2f} |",
            flush=True,
        )
    print(
        f"RESULT mf_step_ms_rows_largest={rows[-1][0]:.2f} mf_step_ms_sparse_adam_largest={rows[-1][1]:.2f}"
        f" step_growth_rows={rows[-1][0] / rows[0][0]:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
