"""Re-orders on UCI Online Retail: the repeat-purchase policies and the repurchase model against the
baseline "each shopper's own most frequent purchases", with re-orders counted as hits.

    .venv/bin/python benchmarks/buy_again.py

Reads ``../shared/datasets/uci_online_retail/online_retail.parquet`` (not in the repository) through
the UCI adapter; temporal split as ``benchmarks/quality.py`` (the newest 10% of events are test).
Two protocols on the same test users:

* **new items** (the platform's usual one): relevant = test items the shopper never had; history
  excluded from every list;
* **with re-orders**: relevant = every test item, re-orders included (on UCI about 40% of test pairs).

Rows: the baseline (own purchases by count, then recency), the repurchase model alone
(``recsys_lib.serving.repurchase``, as of the test window's start, history purchases only), and
item-kNN and MF-BPR (default settings, fitted once) with ``recommend.repeat_purchases`` exclude and
allow. Top 10, NDCG@10, HR@10 and recall@10. Quality figures only (no timing). Ends with ``RESULT
protocol=reorders best=<row> ndcg10=<x> baseline_ndcg10=<y> knn_exclude_ndcg10=<z>``.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import cpu_name
from benchmarks.quality import DATASETS
from recsys_lib import schema
from recsys_lib.config import FeaturesConfig, ModelConfig, RecommendConfig, TrainConfig
from recsys_lib.evaluation.evaluate import evaluation_users, history_splits, relevant_items
from recsys_lib.evaluation.metrics import ranking_metrics
from recsys_lib.features import build_features
from recsys_lib.features.build import purchase_pairs
from recsys_lib.models import create_model
from recsys_lib.serving.bundle import ModelBundle
from recsys_lib.serving.repurchase import buy_again
from recsys_lib.serving.rules import compile_rules
from recsys_lib.sources import uci_retail

K = 10


def top_from_frame(frame: pd.DataFrame, users: np.ndarray, score: str) -> np.ndarray:
    """(n, K) item indices per user of ``users`` from rows (user_idx, item_idx, ``score``), best first."""
    out = np.full((len(users), K), -1, dtype=np.int64)
    row_of = {u: i for i, u in enumerate(users)}
    ranked = frame.sort_values([schema.USER_IDX, score, schema.ITEM_IDX], ascending=[True, False, True])
    ranked = ranked[ranked[schema.USER_IDX].isin(row_of)]
    ranked = ranked.assign(slot=ranked.groupby(schema.USER_IDX).cumcount())
    ranked = ranked[ranked["slot"] < K]
    out[ranked[schema.USER_IDX].map(row_of).to_numpy(), ranked["slot"].to_numpy()] = ranked[schema.ITEM_IDX]
    return out


def main() -> None:
    raw = pd.read_parquet(DATASETS / "uci_online_retail" / "online_retail.parquet")
    tables = uci_retail.to_canonical(raw, name="online_retail.parquet")
    features = build_features(tables.events, tables.items, FeaturesConfig(split="temporal"))
    test_start = features.test[schema.TIMESTAMP].min()
    events = tables.events
    before = events[(events[schema.EVENT_TYPE] == schema.PURCHASE) & (events[schema.TIMESTAMP] < test_start)]
    past = purchase_pairs(before, features.user_ids, features.item_ids)  # history purchases only: no leak
    history = dataclasses.replace(features, purchases=past)  # what the scorer may allow back: bought before test
    users = evaluation_users(features, schema.TEST)
    protocols = {
        "new items": relevant_items(features, schema.TEST, users),
        "with re-orders": _all_test_items(features, users),
    }
    print(f"machine: {cpu_name()}; UCI Online Retail: {len(users):,} test users; test from {test_start}")
    lists: dict[str, np.ndarray] = {
        "own most frequent purchases": top_from_frame(
            past.assign(order=past["purchases"] * 1e12 + past["last"].array.asi8 / 1e6), users, "order"
        ),
        "repurchase model (buy_again)": top_from_frame(
            buy_again(past, features.n_items, test_start, np.ones(features.n_items, bool), K), users, schema.SCORE
        ),
    }
    for name in ("item_knn", "mf_bpr"):
        model = create_model(ModelConfig(name=name), features.n_users, features.n_items)
        bundle = ModelBundle.from_training(model.fit(features, TrainConfig()), features)
        for policy in ("exclude", "allow"):
            rules = compile_rules(RecommendConfig(repeat_purchases=policy), features.items)
            scorer = bundle.scorer(
                history, history_splits=history_splits(schema.TEST), exclude_unavailable=False, rules=rules
            )
            lists[f"{name}, repeats {policy}"] = scorer.topk_in_chunks(users, K, 1024)[0]
    print("\n| list | protocol | NDCG@10 | HR@10 | recall@10 |")
    print("|---|---|---:|---:|---:|")
    results: dict[tuple[str, str], dict[str, float]] = {}
    for protocol, relevant in protocols.items():
        keep = np.array([len(r) > 0 for r in relevant])
        for name, top in lists.items():
            metrics = ranking_metrics(
                top[keep], [r for r, k in zip(relevant, keep, strict=True) if k], [K], features.n_items
            )
            results[(name, protocol)] = metrics
            print(
                f"| {name} | {protocol} ({int(keep.sum()):,} users) | {metrics['ndcg_at_10']:.4f} | "
                f"{metrics['hr_at_10']:.4f} | {metrics['recall_at_10']:.4f} |"
            )
    reorders = {n: m for (n, p), m in results.items() if p == "with re-orders"}
    best = max(reorders, key=lambda n: reorders[n]["ndcg_at_10"])
    print(
        f"RESULT protocol=reorders best={best.replace(' ', '_').replace(',', '')} "
        f"ndcg10={reorders[best]['ndcg_at_10']:.4f} "
        f"baseline_ndcg10={reorders['own most frequent purchases']['ndcg_at_10']:.4f} "
        f"knn_exclude_ndcg10={reorders['item_knn, repeats exclude']['ndcg_at_10']:.4f}"
    )


def _all_test_items(features, users: np.ndarray) -> list[np.ndarray]:
    """Every test item of each user, re-orders of history items included."""
    test = features.test
    by_user = test.groupby(schema.USER_IDX)[schema.ITEM_IDX].apply(lambda s: np.unique(s.to_numpy(np.int64)))
    return [by_user.get(u, np.empty(0, np.int64)) for u in users]


if __name__ == "__main__":
    main()
