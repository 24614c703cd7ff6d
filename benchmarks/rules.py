"""What each business rule costs the export: users ranked per second through the shared Ranker,
without rules and with each rule alone, on synthetic MF-like vectors.

    .venv/bin/python benchmarks/rules.py                      # 20,000 users x 100,000 items, k = 10
    .venv/bin/python benchmarks/rules.py --users 5000 --items 20000

Same vectors, same users, same history exclusion (20 items per user), same threads (pinned and
printed) for every configuration; chunks of 1,024 users as the export scores them. Each figure is
the median of 3 interleaved trials, with the spread. Rules: ``boost`` (5% of items are new
arrivals, x1.5), ``caps`` (50 categories, at most 2 per list), ``diversity`` (MMR, lambda 0.7, item
vectors), ``pins`` (2 pinned items), ``filters`` (a quarter of the items excluded). Ends with
``RESULT rules_slowest=<name> slowest_vs_none=<ratio> none_users_per_s=<x>``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import cpu_name
from recsys_lib import schema
from recsys_lib.config import RecommendConfig
from recsys_lib.serving.ranker import Ranker
from recsys_lib.serving.rules import ListRules, compile_rules

K, DIM, CHUNK, HISTORY, THREADS, TRIALS = 10, 64, 1024, 20, 2, 3


def catalogue(n_items: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        {
            schema.ITEM_ID: [f"i{i}" for i in range(n_items)],
            schema.CATEGORY: [f"c{c}" for c in rng.integers(50, size=n_items)],
            schema.BRAND: [f"b{b}" for b in rng.integers(200, size=n_items)],
            schema.PRICE: rng.uniform(1, 100, size=n_items),
        }
    )


def configurations(items: pd.DataFrame, rng: np.random.Generator) -> dict[str, ListRules]:
    age = rng.uniform(0, 365, size=len(items))
    age[rng.random(len(items)) < 0.05] = 1.0
    quarter = tuple(f"c{c}" for c in range(12))
    settings = {
        "none": RecommendConfig(),
        "filters": RecommendConfig(exclude_categories=quarter),
        "boost": RecommendConfig(new_arrival_days=7, new_arrival_boost=1.5),
        "caps": RecommendConfig(max_per_category=2),
        "diversity": RecommendConfig(diversity=0.7, diversity_by="vectors"),
        "pins": RecommendConfig(pinned_items=("i1", "i2")),
    }
    return {name: compile_rules(s, items, age) for name, s in settings.items()}


def run(ranker: Ranker, users: np.ndarray, exclude: sp.csr_matrix) -> float:
    started = time.perf_counter()
    for start in range(0, len(users), CHUNK):
        ranker.search(users[start : start + CHUNK], K, exclude[start : start + CHUNK])
    return len(users) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=100_000)
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.items, DIM)).astype(np.float32) / np.sqrt(DIM)
    users = rng.standard_normal((args.users, DIM)).astype(np.float32)
    cols = rng.integers(args.items, size=(args.users, HISTORY)).ravel()
    exclude = sp.csr_matrix(
        (np.ones(len(cols), np.float32), cols, np.arange(0, len(cols) + 1, HISTORY)), shape=(args.users, args.items)
    )
    exclude.sum_duplicates()
    items = catalogue(args.items, rng)
    rankers = {name: Ranker(rules, rules.blocked, vectors) for name, rules in configurations(items, rng).items()}
    print(
        f"machine: {cpu_name()}; torch threads {torch.get_num_threads()}; {args.users:,} users x {args.items:,} items"
    )
    for ranker in rankers.values():
        run(ranker, users[:CHUNK], exclude[:CHUNK])  # warm-up: buffers, the kernel's path choice
    rates: dict[str, list[float]] = {name: [] for name in rankers}
    for _ in range(TRIALS):
        for name, ranker in rankers.items():  # interleaved
            rates[name].append(run(ranker, users, exclude))
    base = statistics.median(rates["none"])
    print("\n| rules | users/s [min, max] | vs none |")
    print("|---|---:|---:|")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"| {name} | {median:,.0f} [{min(values):,.0f}, {max(values):,.0f}] | {median / base:.2f} |")
    slowest = min(rates, key=lambda n: statistics.median(rates[n]))
    print(
        f"RESULT rules_slowest={slowest} slowest_vs_none={statistics.median(rates[slowest]) / base:.2f} "
        f"none_users_per_s={base:.0f}"
    )


if __name__ == "__main__":
    main()
