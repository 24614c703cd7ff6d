"""What diversity costs and buys: maximal marginal relevance (``recommend.diversity``) on UCI Online
Retail, NDCG@10 against intra-list diversity and catalogue coverage for a few lambdas.

    .venv/bin/python benchmarks/diversity.py              # item-kNN and MF-BPR, lambda off, 0.9, 0.7, 0.5
    .venv/bin/python benchmarks/diversity.py --models item_knn --lambdas 0.8

Reads ``../shared/datasets/uci_online_retail/online_retail.parquet`` (not in the repository),
through the UCI adapter, temporal split (as ``benchmarks/quality.py``). Each model is fitted once
with the default settings; its test users' top 10 are then ranked through the same scorer the
export uses, history excluded, under ``recommend.diversity = lambda`` with similarity ``auto``
(item vectors for MF, the derived categories for item-kNN), and scored on the test split:
NDCG@10, HR@10, coverage@10 (distinct items listed / catalogue) and intra-list diversity@10
(share of pairs of a list in different categories, categories derived from titles). Lambdas are
not tuned on test: the table is a trade-off curve, not a model selection.

Ends with ``RESULT model=<m> ndcg_drop_at_0_7=<relative> ild_gain_at_0_7=<absolute> coverage_gain_at_0_7=<x>``
for the first model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import cpu_name
from benchmarks.quality import load_uci
from recsys_lib import schema
from recsys_lib.config import ModelConfig, RecommendConfig, TrainConfig
from recsys_lib.evaluation.evaluate import evaluable, history_splits
from recsys_lib.evaluation.metrics import intra_list_diversity, ranking_metrics
from recsys_lib.models import create_model
from recsys_lib.serving.bundle import ModelBundle
from recsys_lib.serving.rules import compile_rules

K = 10


def lists(bundle: ModelBundle, features, users: np.ndarray, lam: float | None) -> np.ndarray:
    rules = None if lam is None else compile_rules(RecommendConfig(diversity=lam), features.items)
    scorer = bundle.scorer(features, history_splits=history_splits(schema.TEST), exclude_unavailable=False, rules=rules)
    return scorer.topk_in_chunks(users, K, 1024)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["item_knn", "mf_bpr"])
    parser.add_argument("--lambdas", nargs="+", type=float, default=[0.9, 0.7, 0.5])
    args = parser.parse_args()
    features = load_uci()
    users, relevant = evaluable(features, schema.TEST)
    category = pd.factorize(features.items[schema.CATEGORY], use_na_sentinel=True)[0]
    print(
        f"machine: {cpu_name()}; UCI Online Retail: {features.n_users:,} users, {features.n_items:,} items, "
        f"{len(users):,} test users"
    )
    print("\n| model | lambda | NDCG@10 | HR@10 | coverage@10 | intra-list diversity@10 |")
    print("|---|---|---:|---:|---:|---:|")
    first: dict[float | None, dict[str, float]] = {}
    for name in args.models:
        model = create_model(ModelConfig(name=name), features.n_users, features.n_items)
        bundle = ModelBundle.from_training(model.fit(features, TrainConfig()), features)
        for lam in [None, *args.lambdas]:
            top = lists(bundle, features, users, lam)
            metrics = ranking_metrics(top, relevant, [K], features.n_items)
            metrics["ild"] = intra_list_diversity(top, category, K)
            if name == args.models[0]:
                first[lam] = metrics
            label = "off" if lam is None else f"{lam:g}"
            print(
                f"| {name} | {label} | {metrics['ndcg_at_10']:.4f} | {metrics['hr_at_10']:.4f} | "
                f"{metrics['coverage_at_10']:.3f} | {metrics['ild']:.3f} |"
            )
    base, at = first[None], first.get(0.7)
    if at is not None:
        print(
            f"RESULT model={args.models[0]} ndcg_drop_at_0_7={1 - at['ndcg_at_10'] / base['ndcg_at_10']:.3f} "
            f"ild_gain_at_0_7={at['ild'] - base['ild']:.3f} "
            f"coverage_gain_at_0_7={at['coverage_at_10'] - base['coverage_at_10']:.3f}"
        )


if __name__ == "__main__":
    main()
