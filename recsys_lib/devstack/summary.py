"""What the demo prints at the end: where to look, how good the model is, sample recommendations."""

from __future__ import annotations

import pandas as pd

from recsys_lib import schema
from recsys_lib.devstack.services import Stack
from recsys_lib.export import read_manifest, read_recommendations
from recsys_lib.registry import lookup
from recsys_lib.registry import mlflow_registry as registry
from recsys_lib.registry.promotion import CHAMPION
from recsys_lib.storage import ObjectStore, layout


def print_summary(store: ObjectStore, stack: Stack, dataset: str, items: pd.DataFrame, n_users: int = 3) -> None:
    """Print what the demo produced: MLflow UI, the champion version, the published export and
    validation report, test NDCG@10 against popularity, and the top five of ``n_users`` users
    beside the categories they browse. Raises SystemExit when no champion is registered."""
    name = f"recsys-{dataset}"
    champion = registry.version_by_alias(name, CHAMPION)
    if champion is None:
        raise SystemExit(f"no '{CHAMPION}' version of {name} in MLflow: the run did not register a model")
    metrics = lookup.version_metrics(champion)  # the LoggedModel's test metrics
    manifest = read_manifest(store, dataset)
    print(f"   MLflow UI           {stack.mlflow.url}  (experiment recsys-{dataset})")
    print(f"   registered model    {name} version {champion.version}, alias '{CHAMPION}'")
    published = store.uri(layout.export_prefix(schema.ExportTable.USER_TOPK, dataset, manifest["dt"]))
    print(
        f"   published export    {published}"
        f"  ({manifest['rows']:,} rows, {len(manifest['files'])} file(s), _manifest.json + _SUCCESS)"
    )
    report = store.get_json(layout.validation_report_key(dataset, manifest["dt"]))
    state = "passed" if report["success"] else "FAILED"
    print(
        f"   validation          {state}: {report['row_counts']['events']:,} events, "
        f"{report.get('quarantined', 0):,} quarantined; Great Expectations Data Docs at {report.get('data_docs_uri')}"
    )
    model, base = metrics.get("test_ndcg_at_10", float("nan")), metrics.get("baseline_test_ndcg_at_10", float("nan"))
    print(
        f"   NDCG@10 (test)      model {model:.4f}   popularity {base:.4f}   lift x{model / base:.2f}"
        if base > 0
        else f"   NDCG@10 (test)      model {model:.4f}   popularity {base:.4f}"
    )
    recs = read_recommendations(store, dataset)
    events = store.get_frame(layout.snapshot_key(dataset, manifest["dt"], "events"))
    catalogue = items.set_index(schema.ITEM_ID)
    for user in sorted(recs[schema.USER_ID].unique())[:n_users]:
        history = events.loc[events[schema.USER_ID] == user, schema.ITEM_ID].map(catalogue[schema.CATEGORY])
        likes = ", ".join(history.value_counts().index[:2])
        print(f"\n   user {user} (mostly browses: {likes})")
        top = recs[recs[schema.USER_ID] == user].nsmallest(5, schema.RANK)
        for row in top.itertuples(index=False):
            item = catalogue.loc[row.item_id]
            print(
                f"     {row.rank}. {row.item_id}  {item[schema.TITLE]!s:<34} {item[schema.CATEGORY]!s:<12} "
                f"score {row.score:.3f}"
            )


def print_outcomes(store: ObjectStore, dataset: str, export_dt: str) -> None:
    """The outcome report of the ``export_dt`` export: each arm's metrics and the verdict."""
    from recsys_lib.outcomes.summary import summary

    report = store.get_json(layout.outcomes_report_key(dataset, export_dt))
    print(f"\n   experiment (report {store.uri(layout.outcomes_report_key(dataset, export_dt))}):")
    print("\n".join("   " + line for line in summary(report).splitlines()))
