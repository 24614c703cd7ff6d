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
(``recsys_lib.serving.repurchase``, as of the test window's start, history purchases only; its
``timing`` weight chosen among 0, 0.25, 0.5, 1 on the validation window, test not read), and
item-kNN and MF-BPR (default settings, fitted once) with ``recommend.repeat_purchases`` exclude,
allow, and allow with ``recommend.buy_again_share`` (that share of each list's places for the
repurchase model's re-orders) chosen per model among 0, 0.2, ..., 1 on the validation window (re-orders
counted; scored from train, purchases before the window). Top 10, NDCG@10, HR@10 and recall@10.
Quality figures only (no timing). Ends with ``RESULT protocol=reorders baseline_ndcg10=<x>
repurchase_ndcg10=<y> timing=<t> mf_allow_ndcg10=<z> knn_exclude_ndcg10=<w> mf_blend_ndcg10=<b>
mf_blend_share=<s>`` (the repurchase model with the validation-chosen timing; MF-BPR's blend at its
validation-chosen share).
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
TIMINGS = (0.0, 0.25, 0.5, 1.0)  # the repurchase model's "is it due?" weight, chosen on validation
SHARES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # recommend.buy_again_share under allow, chosen on validation


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
    # what the scorer may allow back: bought before test; no test pairs, so the re-orders the blend
    # places are scored as of the test window's start (FeatureSet.data_end), not its end
    history = dataclasses.replace(features, purchases=past, test=features.test.iloc[:0])
    users = evaluation_users(features, schema.TEST)
    protocols = {
        "new items": relevant_items(features, schema.TEST, users),
        "with re-orders": relevant_items(features, schema.TEST, users, reorders=True),
    }
    print(f"machine: {cpu_name()}; UCI Online Retail: {len(users):,} test users; test from {test_start}")
    timing = choose_timing(features, events)
    everything = np.ones(features.n_items, bool)
    lists: dict[str, np.ndarray] = {
        "own most frequent purchases": top_from_frame(
            past.assign(order=past["purchases"] * 1e12 + past["last"].array.asi8 / 1e6), users, "order"
        ),
        "repurchase model, timing 1 (untuned)": top_from_frame(
            buy_again(past, features.n_items, test_start, everything, K, 1.0), users, schema.SCORE
        ),
        f"repurchase model, timing {timing:g} (chosen on validation)": top_from_frame(
            buy_again(past, features.n_items, test_start, everything, K, timing), users, schema.SCORE
        ),
    }
    blended: dict[str, float] = {}
    for name in ("item_knn", "mf_bpr"):
        model = create_model(ModelConfig(name=name), features.n_users, features.n_items)
        bundle = ModelBundle.from_training(model.fit(features, TrainConfig()), features)
        share = blended[name] = choose_share(name, bundle, features, events, timing)
        for label, settings in (
            ("repeats exclude", RecommendConfig()),
            ("repeats allow", RecommendConfig(repeat_purchases="allow")),
            (
                f"repeats allow, buy_again_share {share:g} (chosen on validation)",
                RecommendConfig(repeat_purchases="allow", buy_again_share=share, buy_again_timing=timing),
            ),
        ):
            rules = compile_rules(settings, features.items)
            scorer = bundle.scorer(
                history, history_splits=history_splits(schema.TEST), exclude_unavailable=False, rules=rules
            )
            lists[f"{name}, {label}"] = scorer.topk_in_chunks(users, K, 1024)[0]
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
    mf_blend = next(n for n in reorders if n.startswith("mf_bpr, repeats allow, "))
    chosen = next(n for n in reorders if n.startswith("repurchase model") and "chosen on validation" in n)
    print(
        f"RESULT protocol=reorders baseline_ndcg10={reorders['own most frequent purchases']['ndcg_at_10']:.4f} "
        f"repurchase_ndcg10={reorders[chosen]['ndcg_at_10']:.4f} timing={timing:g} "
        f"mf_allow_ndcg10={reorders['mf_bpr, repeats allow']['ndcg_at_10']:.4f} "
        f"knn_exclude_ndcg10={reorders['item_knn, repeats exclude']['ndcg_at_10']:.4f} "
        f"mf_blend_ndcg10={reorders[mf_blend]['ndcg_at_10']:.4f} "
        f"mf_blend_share={blended['mf_bpr']:g}"
    )


def purchases_before(features, events: pd.DataFrame, start: pd.Timestamp) -> pd.DataFrame:
    """The features' purchase pairs (``FeatureSet.purchases``) of the events before ``start``."""
    bought = events[(events[schema.EVENT_TYPE] == schema.PURCHASE) & (events[schema.TIMESTAMP] < start)]
    return purchase_pairs(bought, features.user_ids, features.item_ids)


def choose_share(name: str, bundle: ModelBundle, features, events: pd.DataFrame, timing: float) -> float:
    """``recommend.buy_again_share`` under ``allow`` with the best NDCG@10 on the validation window
    (re-orders counted: the protocol of lists that may repeat), scored from train with the purchases
    before the window; the test window is not read. Prints the candidates."""
    start = features.validation[schema.TIMESTAMP].min()
    history = dataclasses.replace(  # nothing from the window on: re-orders scored as of its start
        features,
        purchases=purchases_before(features, events, start),
        validation=features.validation.iloc[:0],
        test=features.test.iloc[:0],
    )
    users = evaluation_users(features, schema.VALIDATION)
    relevant = relevant_items(features, schema.VALIDATION, users, reorders=True)
    scores = {}
    for share in SHARES:
        settings = RecommendConfig(repeat_purchases="allow", buy_again_share=share, buy_again_timing=timing)
        scorer = bundle.scorer(
            history,
            history_splits=history_splits(schema.VALIDATION),
            exclude_unavailable=False,
            rules=compile_rules(settings, features.items),
        )
        top = scorer.topk_in_chunks(users, K, 1024)[0]
        scores[share] = ranking_metrics(top, relevant, [K], features.n_items)["ndcg_at_10"]
        print(
            f"validation ({len(users):,} users): {name}, allow, buy_again_share {share:g}: NDCG@10 {scores[share]:.4f}"
        )
    return max(SHARES, key=lambda s: scores[s])


def choose_timing(features, events: pd.DataFrame) -> float:
    """The repurchase model's ``timing`` with the best NDCG@10 on the validation window (re-orders
    counted), from the purchases before it; the test window is not read. Prints the candidates."""
    start = features.validation[schema.TIMESTAMP].min()
    past = purchases_before(features, events, start)
    users = evaluation_users(features, schema.VALIDATION)
    relevant = relevant_items(features, schema.VALIDATION, users, reorders=True)
    scores = {}
    for timing in TIMINGS:
        ranked = buy_again(past, features.n_items, start, np.ones(features.n_items, bool), K, timing)
        scores[timing] = ranking_metrics(top_from_frame(ranked, users, schema.SCORE), relevant, [K], features.n_items)
    for timing, metrics in scores.items():
        print(f"validation ({len(users):,} users): timing {timing:g}: NDCG@10 {metrics['ndcg_at_10']:.4f}")
    return max(TIMINGS, key=lambda t: scores[t]["ndcg_at_10"])


if __name__ == "__main__":
    main()
