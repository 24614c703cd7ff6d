"""Sequence-model training step cost against the catalogue size: the item table's row-sparse
gradients + RowAdam (today, with sampled softmax) against dense gradients + AdamW (before).

    .venv/bin/python benchmarks/sequence_step.py     # sasrec, gru4rec, two_tower; 12k, 200k and 2M items

For the two-tower model "before" also means the item tower built for every item each step (its
history and its softmax read rows of ``item_weights()``), "today" for the step's items only; its
synthetic catalogue has 4 title tokens, a category, a brand and a price bucket per item, every item
known (id vectors on).

Same network, same initial weights (default ``sequential`` settings: one block or GRU layer, 64
dimensions, max length 50), same batches (128 sequences of 50 items, the quality benchmark's batch;
256 uniform negatives per sequence), same loss (``NextItemModule.loss``: sampled-softmax
cross-entropy at every position), the default weight decay, deterministic algorithms as in
training, same threads (pinned and printed); the dense side reads its rows as the code before did
(indexing the item weights). One step = forward, backward and optimiser step, no Lightning loop
around it. Each figure is the median of 3 interleaved trials of 20 steps (after 3 warm-up steps),
with the spread. 12,101 items is Amazon Beauty's catalogue, 208,333 the 50M-event scale run's. Ends with
``RESULT sequence_step_ms_sparse_largest=<x> sequence_step_ms_dense_largest=<y> step_growth_sparse=<z>``
(the slower model's figures; ``step_growth``: its step-time ratio between the largest and the
smallest catalogue).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import interleaved_ms, spread
from recsys_lib.config import SequentialConfig, TrainConfig, TwoTowerConfig
from recsys_lib.features.content import ItemContent
from recsys_lib.models.sequential import GRU4RecNet, NextItemModule, SASRecNet, SequenceNet
from recsys_lib.models.two_tower import TwoTowerNet

BATCH, LENGTH, DIM = 128, 50, 64
Batch = tuple[torch.Tensor, torch.Tensor]
Build = Callable[[int, SequentialConfig, bool], SequenceNet]


def _item_table(net_class: type[SequenceNet]) -> Build:
    def build(n_items: int, cfg: SequentialConfig, sparse: bool) -> SequenceNet:
        net = net_class(n_items, DIM, cfg)  # type: ignore[call-arg]
        if not sparse:  # the code before: a dense table, rows read by indexing the item weights
            net.item.sparse = False  # type: ignore[union-attr]
            net.item_lookup = types.MethodType(SequenceNet.item_lookup, net)  # type: ignore[method-assign]
        return net

    return build


def _two_tower(n_items: int, cfg: SequentialConfig, sparse: bool) -> SequenceNet:
    tt, rng = TwoTowerConfig(), np.random.default_rng(0)
    content = ItemContent(
        title_tokens=rng.integers(1, tt.title_buckets + 1, 4 * n_items),
        title_offsets=np.arange(n_items, dtype=np.int64) * 4,
        category=rng.integers(1, tt.category_buckets + 1, n_items),
        brand=rng.integers(1, tt.category_buckets + 1, n_items),
        price_bucket=rng.integers(1, tt.price_buckets + 1, n_items),
    )
    net = TwoTowerNet(n_items, DIM, content, np.ones(n_items, dtype=bool), tt, cfg.dropout, sparse=sparse)
    if not sparse:  # the code before: every item's tower each step, a dense id table
        net.item_lookup = types.MethodType(SequenceNet.item_lookup, net)  # type: ignore[method-assign]
        net._lookup = lambda items: net.item_weights()[items.clamp(min=0)]  # type: ignore[method-assign]
    return net


NETS: dict[str, Build] = {"sasrec": _item_table(SASRecNet), "gru4rec": _item_table(GRU4RecNet), "two_tower": _two_tower}


def variants(build: Build, n_items: int) -> dict[str, Callable[[Batch], None]]:
    """The "sparse" and "dense" variants: one training step each, on two copies of the same initial network."""
    cfg = SequentialConfig()  # sampled softmax, 256 negatives: the default
    train = TrainConfig(learning_rate=1e-3)  # the default weight decay: both optimisers' decay paths run
    out = {}
    state = None
    for name in ("sparse", "dense"):
        net = build(n_items, cfg, name == "sparse")
        if state is None:
            state = net.state_dict()
        net.load_state_dict(state)
        module = NextItemModule(net, cfg, train)
        optimizer = module.configure_optimizers()  # RowAdam for the sparse table, AdamW otherwise
        out[name] = _stepper(module, optimizer)
    return out


def _stepper(module: NextItemModule, optimizer: torch.optim.Optimizer) -> Callable[[Batch], None]:
    def step(batch: Batch) -> None:
        optimizer.zero_grad(set_to_none=True)
        module.loss(*batch)[0].backward()
        optimizer.step()

    return step


def batches(n_items: int, n: int, seed: int) -> list[Batch]:
    """Full-length sequences of uniform items: inputs and their next items."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        seq = torch.randint(0, n_items, (BATCH, LENGTH + 1), generator=generator)
        out.append((seq[:, :-1], seq[:, 1:]))
    return out


def measure(build: Build, n_items: int, trials: int, n_steps: int) -> dict[str, list[float]]:
    steps = variants(build, n_items)
    torch.manual_seed(0)
    return interleaved_ms(
        steps, lambda trial: batches(n_items, n_steps, seed=trial + 1), trials, batches(n_items, 3, 0)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", default="12101,208333,2000000")
    parser.add_argument("--models", nargs="+", default=list(NETS), choices=list(NETS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)  # as the trainer runs (deterministic=True)
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, dim {DIM}, batch {BATCH} x {LENGTH}")
    print("| model | items | row-sparse + RowAdam ms/step [min, max] | dense + AdamW | dense / sparse |")
    print("|---|---:|---:|---:|---:|")
    worst: tuple[float, float, float] | None = None  # sparse largest, dense largest, sparse growth
    for model in args.models:
        medians = []
        for n_items in (int(x) for x in args.items.split(",")):
            r = measure(NETS[model], n_items, 3, args.steps)
            sparse, dense = statistics.median(r["sparse"]), statistics.median(r["dense"])
            medians.append((sparse, dense))
            print(
                f"| {model} | {n_items:,} | {spread(r['sparse'])} | {spread(r['dense'])} | {dense / sparse:.2f} |",
                flush=True,
            )
        figures = (medians[-1][0], medians[-1][1], medians[-1][0] / medians[0][0])
        if worst is None or figures[0] > worst[0]:
            worst = figures
    assert worst is not None
    print(
        f"RESULT sequence_step_ms_sparse_largest={worst[0]:.1f} sequence_step_ms_dense_largest={worst[1]:.1f}"
        f" step_growth_sparse={worst[2]:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
