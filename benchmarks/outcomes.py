"""How often the outcome report's verdict is wrong: A/A weeks (the same model in both arms) and
A/B weeks (a strong model against a weak one) on the demo's synthetic shop.

    .venv/bin/python benchmarks/outcomes.py              # 100 seeds of each, about 3 minutes
    .venv/bin/python benchmarks/outcomes.py --seeds 20

The shop is the demo's (2,000 users, 500 items, 90 days, seed 0). Item-kNN and popularity are
fitted once on it through the library (features, model, bundle, scorer: top-10 per user, history
excluded, as the export writes them). Each seed then draws a new arm assignment (the experiment is
named after the seed, 50% challenger share), simulates a week of shoppers responding to their
lists (``recsys_lib.outcomes.simulate``, seeded) and builds the report
(``recsys_lib.outcomes.report``, Holm over the metrics, alpha 0.05):

* **A/A**: item-kNN in both arms. The verdict must be "not significant", and no metric should be
  significant, in at least 90% of seeds (Holm controls the family-wise error at 5%).
* **A/B**: item-kNN champion, popularity challenger: the verdict should be "challenger worse".
* **A/B, smaller gap**: the challenger's lists keep item-kNN's top 8 and fill ranks 9-10 with
  popularity's items, a gap closer to what two reasonable models show.

Prints a table and ends with ``RESULT aa_verdict_false_positive_rate=<x>
aa_any_metric_significant_rate=<y> ab_power=<z> ab_small_gap_power=<w> seeds=<n>``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import cpu_name
from recsys_lib import schema
from recsys_lib.config import FeaturesConfig, ModelConfig, OutcomesConfig, TrainConfig
from recsys_lib.features import build_features
from recsys_lib.models import create_model
from recsys_lib.outcomes.arms import in_challenger_arm
from recsys_lib.outcomes.report import NOT_SIGNIFICANT, WORSE, Window, build_report
from recsys_lib.outcomes.simulate import simulate_days
from recsys_lib.serving.bundle import ModelBundle
from recsys_lib.sources.synthetic import generate_shop, shop_truth

SHOP = {"n_users": 2000, "n_items": 500, "seed": 0}
END = datetime(2026, 11, 1, tzinfo=UTC)
EXPORT_DT = (END - timedelta(days=1)).date()
K, WEEK, ALPHA = 10, 7, 0.05


def lists(model_name: str, events: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Top-K rows per user of ``model_name`` fitted on the shop, as the export writes them."""
    features = build_features(events, items, FeaturesConfig())
    model = create_model(ModelConfig(name=model_name), features.n_users, features.n_items)
    bundle = ModelBundle.from_training(model.fit(features, TrainConfig()), features)
    scorer = bundle.scorer(features)
    users = np.arange(features.n_users)
    top, _ = scorer.topk(users, K)
    rows = pd.DataFrame({schema.USER_ID: np.repeat(features.user_ids[users], K), schema.ITEM_ID: top.ravel()})
    rows = rows[rows[schema.ITEM_ID] >= 0]
    rows[schema.ITEM_ID] = features.item_ids[rows[schema.ITEM_ID].to_numpy()]
    rows[schema.RANK] = rows.groupby(schema.USER_ID).cumcount() + 1
    return rows.reset_index(drop=True)


def blend(strong: pd.DataFrame, weak: pd.DataFrame, keep: int) -> pd.DataFrame:
    """Each user's top ``keep`` of ``strong`` followed by ``weak``'s items not already listed, K in all."""
    head = strong[strong[schema.RANK] <= keep]
    tail = weak.merge(head[[schema.USER_ID, schema.ITEM_ID]], how="left", indicator=True)
    tail = tail[tail["_merge"] == "left_only"].drop(columns="_merge")
    tail[schema.RANK] += K  # after every kept item
    rows = pd.concat([head, tail], ignore_index=True).sort_values([schema.USER_ID, schema.RANK], kind="stable")
    rows = rows.groupby(schema.USER_ID).head(K).copy()
    rows[schema.RANK] = rows.groupby(schema.USER_ID).cumcount() + 1
    return rows.reset_index(drop=True)


def experiment(champion: pd.DataFrame, challenger: pd.DataFrame, name: str) -> pd.DataFrame:
    """The export of a 50/50 experiment named ``name``: each user's rows from their arm's lists."""
    users = champion[schema.USER_ID].drop_duplicates().to_numpy()
    challenged = set(users[in_challenger_arm(users, name, 0.5)])
    in_challenger = champion[schema.USER_ID].isin(challenged)
    rows = pd.concat(
        [
            champion[~in_challenger].assign(**{schema.ARM: "champion", schema.MODEL_VERSION: "1"}),
            challenger[challenger[schema.USER_ID].isin(challenged)].assign(
                **{schema.ARM: "challenger", schema.MODEL_VERSION: "2"}
            ),
        ],
        ignore_index=True,
    )
    return rows.assign(**{schema.MODEL_NAME: "bench"})


def one_week(truth, recs: pd.DataFrame, seed: int) -> dict:
    days = [EXPORT_DT + timedelta(days=d) for d in range(1, WEEK + 1)]
    events = simulate_days(truth, recs, days, seed=seed)
    return build_report(recs, events, Window(EXPORT_DT.isoformat(), WEEK, WEEK), OutcomesConfig(alpha=ALPHA))


def summarise(reports: list[dict]) -> dict:
    compared = [r["comparison"]["metrics"] for r in reports]
    any_significant = [any((m.get("p_adjusted") or 1.0) < ALPHA for m in c.values()) for c in compared]
    hit = {arm: [r["arms"][arm]["metrics"]["hit_rate"]["value"] for r in reports] for arm in ("champion", "challenger")}
    return {
        "verdicts": [r["verdict"] for r in reports],
        "any_significant": float(np.mean(any_significant)),
        "p_hit": statistics.median(c["hit_rate"]["p_value"] for c in compared),
        "hit_champion": statistics.median(hit["champion"]),
        "hit_challenger": statistics.median(hit["challenger"]),
        "exposed": statistics.median(
            r["arms"]["challenger"]["exposed"] / max(r["arms"]["champion"]["exposed"], 1) for r in reports
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=100)
    args = parser.parse_args()
    started = time.monotonic()
    events, items = generate_shop(end=END, days=90, **SHOP)
    truth = shop_truth(**SHOP)
    knn, popular = lists("item_knn", events, items), lists("popularity", events, items)
    print(f"machine: {cpu_name()}; shop {len(events):,} events, {SHOP['n_users']:,} users; {args.seeds} seeds each")
    half = blend(knn, popular, keep=K - 2)
    aa, ab, small = [], [], []
    for seed in range(args.seeds):  # interleaved, so every scenario sees the same seeds
        aa.append(one_week(truth, experiment(knn, knn, f"aa-{seed}"), seed))
        ab.append(one_week(truth, experiment(knn, popular, f"ab-{seed}"), seed))
        small.append(one_week(truth, experiment(knn, half, f"small-{seed}"), seed))
    rows = {
        "A/A (item-kNN both arms)": summarise(aa),
        "A/B (item-kNN vs popularity)": summarise(ab),
        "A/B, smaller gap (item-kNN vs its top 8 + popularity)": summarise(small),
    }
    print(
        "\n| scenario | seeds | verdict not significant | verdict challenger worse | any metric significant "
        "| median hit rate champion / challenger | median p (hit rate, raw) |"
    )
    print("|---|---:|---:|---:|---:|---|---:|")
    for name, s in rows.items():
        share = {v: s["verdicts"].count(v) / len(s["verdicts"]) for v in (NOT_SIGNIFICANT, WORSE)}
        print(
            f"| {name} | {len(s['verdicts'])} | {share[NOT_SIGNIFICANT]:.2f} | {share[WORSE]:.2f} | "
            f"{s['any_significant']:.2f} | {s['hit_champion']:.3f} / {s['hit_challenger']:.3f} | {s['p_hit']:.3g} |"
        )
    aa_s, ab_s = rows["A/A (item-kNN both arms)"], rows["A/B (item-kNN vs popularity)"]
    false_positive = 1 - aa_s["verdicts"].count(NOT_SIGNIFICANT) / len(aa_s["verdicts"])
    power = ab_s["verdicts"].count(WORSE) / len(ab_s["verdicts"])
    small_s = rows["A/B, smaller gap (item-kNN vs its top 8 + popularity)"]
    small_power = small_s["verdicts"].count(WORSE) / len(small_s["verdicts"])
    print(f"\n{time.monotonic() - started:.0f} s")
    print(
        f"RESULT aa_verdict_false_positive_rate={false_positive:.3f} "
        f"aa_any_metric_significant_rate={aa_s['any_significant']:.3f} ab_power={power:.3f} "
        f"ab_small_gap_power={small_power:.3f} seeds={args.seeds}"
    )


if __name__ == "__main__":
    main()
