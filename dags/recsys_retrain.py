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

import os
from datetime import timedelta
from typing import Any, get_args

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from recsys_lib.config import NAME_PATTERN, ModelName, SourceName, SplitName

RECOMMENDATIONS = Asset(
    name="recsys_recommendations",
    uri=f"s3://{os.environ.get('RECSYS_BUCKET', 'recsys')}/exports/user_topk",
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
    params={
        "dataset": Param(
            "shop",
            type="string",
            pattern=NAME_PATTERN,
            title="Dataset",
            description="Reads raw/<dataset>/ and partitions every output by dataset.",
        ),
        "source": Param(
            "canonical",
            enum=list(get_args(SourceName)),
            title="Source format",
            description="canonical: events/items Parquet or CSV; uci_retail: UCI Online Retail; "
            "sequences: 'user item item ...' text files (use split leave_one_out).",
        ),
        "window_days": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=36500,
            title="Training window (days)",
            description="Read the daily landings raw/<dataset>/events/dt=<day>/ in (logical date - window, "
            "logical date]; empty reads every landing up to the logical date. Later landings are never read.",
        ),
        "model": Param("mf_bpr", enum=list(get_args(ModelName)), title="Model"),
        "split": Param(
            "temporal",
            enum=list(get_args(SplitName)),
            title="Evaluation split",
            description="temporal: newest events held out (production); leave_one_out: each user's last item.",
        ),
        "k": Param(10, type="integer", minimum=1, maximum=1000, title="Recommendations per user"),
        "epochs": Param(20, type="integer", minimum=1, maximum=1000, title="Training epochs"),
        "embedding_dim": Param(64, type="integer", minimum=2, maximum=1024, title="Embedding size"),
        "seed": Param(42, type="integer", title="Random seed"),
        "min_improvement": Param(
            0.0,
            type="number",
            minimum=0,
            title="Promotion margin",
            description="The new model becomes champion only if it beats it by more than this.",
        ),
        "force_promote": Param(False, type="boolean", title="Force promotion to champion"),
        "promote_on": Param(
            "offline",
            enum=["offline", "online"],
            title="Promote on",
            description="offline: a new version beating the champion's test metric becomes champion; online: "
            "it becomes challenger and only the recsys_outcomes reports promote it (outcomes.min_days wins in a row).",
        ),
        "export_shards": Param(
            2,
            type="integer",
            minimum=1,
            maximum=1024,
            title="Export shards",
            description="Users are split into this many shards, each exported by its own mapped task.",
        ),
        "challenger_share": Param(
            0.0,
            type="number",
            minimum=0,
            exclusiveMaximum=1,
            title="Challenger share",
            description="Share of users who get the 'challenger' version's list (an A/B experiment; "
            "0 = everyone gets the champion's). Arms are a hash of the user id, stable across days.",
        ),
        "pseudonymize": Param(
            False,
            type="boolean",
            title="Pseudonymise user ids",
            description="Export a keyed hash of each user id; the key is the password of the Airflow "
            "connection 'recsys_pseudonym' (or $RECSYS_PSEUDONYM_KEY).",
        ),
    },
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
        from recsys_lib.pipelines import features

        r = _run()
        return features.run(r["params"], r["ds"], snapshot_uri=snapshot["snapshot_uri"])

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
        return publishing.run(r["params"], r["ds"], plan_uri=jobs[0]["plan_uri"])

    snapshot = validate(ingest_snapshot())
    feats = build_features(snapshot)
    trained = train(snapshot, feats)
    registered = evaluate_and_register(feats, trained)
    jobs = plan_export(snapshot, feats, registered)
    publish(jobs, export_shard.expand(job=jobs), export_items(jobs))


recsys_retrain()
