"""Retrain and republish recommendations for one shop dataset.

ingest_snapshot -> validate (quarantine, snapshot) -> build_features -> train (pool "gpu") -> evaluate_and_register
-> plan_export -> export_shard (one mapped task per shard) + export_items (item tables, shopper profiles)
-> publish (Asset "recsys_recommendations")

Each export shard is idempotent and retryable alone; publish checks every shard before anything
becomes visible.

Every task is one call into ``recsys_lib.pipelines``; XCom carries only URIs, ids and counts.
Business logic, pandas, torch, boto3 and GX never appear here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from recsys_lib.config import load_config
from recsys_lib.params import param_specs
from recsys_lib.schema import ExportTable
from recsys_lib.storage.layout import export_table_uri

#: The knobs of the trigger form, by section; each Param's type, bounds, title, help and default
#: come from its config field (recsys_lib.params), the defaults from the deployment's config.
PARAMS = (
    "dataset",
    "source",
    "window_days",
    "split",
    "model",
    "embedding_dim",
    "epochs",
    "seed",
    "min_improvement",
    "force_promote",
    "promote_on",
    "k",
    "export_shards",
    "pseudonymize",
    "challenger_share",
    "exclude_categories",
    "only_categories",
    "exclude_brands",
    "only_brands",
    "min_price",
    "max_price",
    "new_arrival_days",
    "new_arrival_boost",
    "max_per_category",
    "pinned_items",
    "blocked_items",
    "repeat_purchases",
    "repeat_purchases_by_category",
    "buy_again_k",
    "diversity",
    "diversity_by",
)

#: The deployment's config, read once at parse time: the Params' defaults and the Asset's location.
_CONFIG = load_config()
#: Updated by every publish; its event's extra names dataset, logical date, model and row count.
RECOMMENDATIONS = Asset(
    name="recsys_recommendations",
    uri=export_table_uri(_CONFIG.storage.bucket, _CONFIG.storage.prefix, ExportTable.USER_TOPK),
)


def _pseudonym_key() -> str | None:
    """The pseudonymisation key from the Airflow connection ``recsys_pseudonym``, if defined."""
    from recsys_lib.export.pseudonym import airflow_connection_key

    return airflow_connection_key()


def _run() -> dict[str, Any]:
    """Params, logical date and data interval of the current run, as the pipelines take them."""
    ctx = get_current_context()
    logical = ctx.get("logical_date") or ctx["dag_run"].run_after
    end = ctx.get("data_interval_end") or ctx["dag_run"].run_after
    return {
        "params": dict(ctx["params"]),
        "ds": logical.strftime("%Y-%m-%d"),
        "interval_end": end.isoformat(),
        "dag_run_id": ctx["run_id"],
    }


@dag(
    dag_id="recsys_retrain",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=12),
    tags=["recsys"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": 2.0,
        "execution_timeout": timedelta(hours=4),
    },
    params={name: Param(**spec) for name, spec in param_specs(PARAMS, _CONFIG).items()},
    doc_md=__doc__,
)
def recsys_retrain() -> None:
    @task
    def ingest_snapshot() -> dict[str, Any]:
        from recsys_lib.errors import DataValidationError
        from recsys_lib.pipelines import ingest

        r = _run()
        try:
            return ingest.run(r["params"], r["ds"], interval_end=r["interval_end"])
        except DataValidationError as exc:  # an unreadable file does not get better with retries
            raise AirflowFailException(str(exc)) from exc

    @task
    def validate(ingested: dict[str, Any]) -> dict[str, Any]:
        from recsys_lib.errors import DataValidationError
        from recsys_lib.pipelines import validate as validation

        r = _run()
        try:
            return validation.run(
                r["params"], r["ds"], ingested_uri=ingested["ingested_uri"], interval_end=r["interval_end"]
            )
        except DataValidationError as exc:  # bad data does not get better with retries
            raise AirflowFailException(str(exc)) from exc

    @task
    def build_features(snapshot: dict[str, Any]) -> dict[str, Any]:
        from recsys_lib.errors import ConfigError
        from recsys_lib.pipelines import features

        r = _run()
        try:
            return features.run(r["params"], r["ds"], snapshot_uri=snapshot["snapshot_uri"])
        except ConfigError as exc:  # a rule the catalogue cannot meet does not get better with retries
            raise AirflowFailException(str(exc)) from exc

    @task(pool="gpu", pool_slots=1, queue="gpu")
    def train(snapshot: dict[str, Any], feats: dict[str, Any]) -> dict[str, Any]:
        from recsys_lib.pipelines import train as training

        r = _run()
        return training.run(
            r["params"],
            r["ds"],
            features_uri=feats["features_uri"],
            snapshot_uri=snapshot["snapshot_uri"],
            dag_run_id=r["dag_run_id"],
        )

    @task
    def evaluate_and_register(feats: dict[str, Any], trained: dict[str, Any]) -> dict[str, Any]:
        from recsys_lib.pipelines import register

        r = _run()
        return register.run(
            r["params"],
            r["ds"],
            features_uri=feats["features_uri"],
            run_id=trained["run_id"],
            bundle_uri=trained["bundle_uri"],
        )

    @task
    def plan_export(snapshot: dict[str, Any], feats: dict[str, Any], registered: dict[str, Any]) -> list[dict]:
        from recsys_lib.errors import ConfigError
        from recsys_lib.pipelines import export as exporting

        r = _run()
        try:
            return exporting.plan(
                r["params"],
                r["ds"],
                features_uri=feats["features_uri"],
                snapshot_uri=snapshot["snapshot_uri"],
                pseudonym=_pseudonym_key(),
            )
        except ConfigError as exc:  # a missing key or a bad setting does not get better with retries
            raise AirflowFailException(str(exc)) from exc

    @task(map_index_template="shard {{ task.op_kwargs['job']['shard'] }}")
    def export_shard(job: dict[str, Any]) -> dict[str, Any]:
        from recsys_lib.pipelines import export as exporting

        r = _run()
        return exporting.run_shard(
            r["params"], r["ds"], plan_uri=job["plan_uri"], shard=job["shard"], pseudonym=_pseudonym_key()
        )

    @task
    def export_items(jobs: list[dict[str, Any]]) -> dict[str, Any]:
        from recsys_lib.pipelines import export as exporting

        r = _run()
        return exporting.run_items(r["params"], r["ds"], plan_uri=jobs[0]["plan_uri"], pseudonym=_pseudonym_key())

    @task(outlets=[RECOMMENDATIONS])
    def publish(jobs: list[dict[str, Any]], shards: list[dict[str, Any]], items: dict[str, Any]) -> dict[str, Any]:
        from recsys_lib.pipelines import publish as publishing

        r = _run()
        result = publishing.run(r["params"], r["ds"], plan_uri=jobs[0]["plan_uri"])
        get_current_context()["outlet_events"][RECOMMENDATIONS].extra = result["event"]
        return result

    snapshot = validate(ingest_snapshot())
    feats = build_features(snapshot)
    trained = train(snapshot, feats)
    registered = evaluate_and_register(feats, trained)
    jobs = plan_export(snapshot, feats, registered)
    publish(jobs, export_shard.expand(job=jobs), export_items(jobs))


recsys_retrain()
