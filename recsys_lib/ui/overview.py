"""Everything the Recommendations page shows for one dataset, gathered in a bounded number of calls.

MLflow: one health probe (2 s), the champion and challenger aliases, one search for the newest
training runs (``max_runs``) and one for the registered versions. S3: the latest ``user_topk``
manifest, the newest validation report, the newest ``max_reports`` outcome reports (one listing
and one read each), and the segment and churn columns only of the latest ``user_profiles`` (its
manifest and part files; Parquet decodes just those columns). Each source fails on its own: its
section carries an error message instead of data, and the other sections still render.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from recsys_lib import schema
from recsys_lib.errors import ExportNotFoundError, ModelError, ObjectNotFoundError, RecsysError, StorageError
from recsys_lib.outcomes.arms import ARMS
from recsys_lib.registry import lookup
from recsys_lib.storage import ObjectStore, layout

#: Metrics shown per run, in column order.
LEADERBOARD_METRICS = ("test_ndcg_at_10", "test_recall_at_10", "test_hr_at_10", "test_mrr_at_10", "test_coverage_at_10")
ALIASES = ("champion", "challenger")
#: Outcome metrics charted over report dates, per arm.
CHART_METRICS = ("hit_rate", "conversion_rate")
MAX_REPORTS = 30


@dataclass
class Section:
    """One block of the page: its data, or why it could not be read."""

    data: Any = None
    error: str | None = None


@dataclass
class Overview:
    """Everything the page shows for one dataset, one :class:`Section` per block, each holding its
    data or the error that kept it from being read."""

    dataset: str
    tracking_uri: str
    models: Section = field(default_factory=Section)  # {alias: {version, run_id, model, metrics, logical_date}}
    runs: Section = field(
        default_factory=Section
    )  # [{run_id, name, model, logical_date, status, version, aliases, metrics}]
    export: Section = field(default_factory=Section)  # the latest manifest + its URI
    validation: Section = field(default_factory=Section)  # the newest report + its date and URI
    outcomes: Section = field(default_factory=Section)  # {dates, newest: {dt, report_uri, report}, series}; None
    profiles: Section = field(default_factory=Section)  # {dt, rows, segments: {segment: n}, churn_risk, uri}; None


def gather(
    dataset: str,
    store: ObjectStore,
    *,
    model_name: str,
    experiment: str,
    max_runs: int = 200,
    max_reports: int = MAX_REPORTS,
) -> Overview:
    """The page's data for ``dataset``; never raises for an unreachable MLflow or S3."""
    out = Overview(dataset=dataset, tracking_uri=lookup.tracking_uri())
    problem = lookup.server_problem(timeout=2.0)
    if problem:
        out.models.error = out.runs.error = f"{problem}: models and runs cannot be shown"
    else:
        _from_mlflow(out, model_name=model_name, experiment=experiment, max_runs=max_runs)
    out.export = _guard(lambda: _export(store, dataset), "S3", store)
    out.validation = _guard(lambda: _validation(store, dataset), "S3", store)
    out.outcomes = _guard(lambda: _outcomes(store, dataset, max_reports), "S3", store)
    out.profiles = _guard(lambda: _profiles(store, dataset), "S3", store)
    return out


def _guard(read: Any, source: str, store: ObjectStore) -> Section:
    try:
        return Section(data=read())
    except ExportNotFoundError as exc:
        return Section(error=str(exc))
    except (RecsysError, OSError) as exc:
        return Section(error=f"{source} at s3://{store.bucket}/{store.prefix} could not be read: {exc}")
    except Exception as exc:  # botocore's connection errors are not OSErrors
        return Section(
            error=f"{source} at s3://{store.bucket}/{store.prefix} could not be read: {type(exc).__name__}: {exc}"
        )


def _from_mlflow(out: Overview, *, model_name: str, experiment: str, max_runs: int) -> None:
    try:
        versions = lookup.versions_by_run(model_name)
        models: dict[str, Any] = {}
        for alias, version in lookup.aliased_versions(model_name, ALIASES).items():
            run = lookup.run_summary(str(version.run_id))
            models[alias] = {
                "version": version.version,
                "run_id": version.run_id,
                "model": run.tags.get("recsys.model", ""),
                "logical_date": run.tags.get("recsys.logical_date", ""),
                "metrics": {m: run.metrics.get(m) for m in LEADERBOARD_METRICS},
                "baseline_ndcg_at_10": run.metrics.get("baseline_test_ndcg_at_10"),
            }
        out.models.data = models
        runs = []
        for run in lookup.recent_runs(experiment, max_runs):
            registered = versions.get(run.run_id)
            runs.append(
                {
                    "run_id": run.run_id,
                    "experiment_id": run.experiment_id,
                    "name": run.name,
                    "model": run.tags.get("recsys.model", ""),
                    "logical_date": run.tags.get("recsys.logical_date", ""),
                    "status": run.status,
                    "version": registered,
                    "aliases": [a for a in ALIASES if registered and models.get(a, {}).get("version") == registered],
                    "metrics": {m: run.metrics.get(m) for m in LEADERBOARD_METRICS},
                }
            )
        out.runs.data = runs
    except ModelError as exc:
        out.models.error = out.models.error or str(exc)
        out.runs.error = str(exc)


def _export(store: ObjectStore, dataset: str) -> dict[str, Any]:
    from recsys_lib.export import read_manifest
    from recsys_lib.export.publish import MANIFEST

    manifest = read_manifest(store, dataset)
    uri = store.uri(layout.export_prefix(schema.ExportTable.USER_TOPK, dataset, manifest["dt"]) + MANIFEST)
    return {**manifest, "manifest_uri": uri}


def _profiles(store: ObjectStore, dataset: str) -> dict[str, Any] | None:
    """Shoppers per RFM segment (in ``schema.RFM_SEGMENTS`` order, then any other) and at churn
    risk in the latest published ``user_profiles``, reading only those two columns; None when no
    profiles are published yet."""
    import pandas as pd

    from recsys_lib.export import read_manifest
    from recsys_lib.export.publish import MANIFEST
    from recsys_lib.storage import parquet_to_frame

    table = schema.ExportTable.USER_PROFILES
    try:
        manifest = read_manifest(store, dataset, table=table)
    except ExportNotFoundError:
        return None
    prefix = layout.export_prefix(table, dataset, manifest["dt"])
    columns = [schema.RFM_SEGMENT, schema.CHURN_RISK]
    frames = []
    for part in manifest["files"]:
        key = prefix + part["name"]
        data = store.get_bytes(key)
        if len(data) != part["size"]:
            raise StorageError(f"{store.uri(key)} has {len(data)} bytes, its manifest says {part['size']}")
        frames.append(parquet_to_frame(data, columns=columns))
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    counts = rows[schema.RFM_SEGMENT].value_counts()
    order = [s for s in schema.RFM_SEGMENTS if s in counts.index] + sorted(set(counts.index) - set(schema.RFM_SEGMENTS))
    return {
        "dt": manifest["dt"],
        "rows": int(manifest["rows"]),
        "segments": {str(s): int(counts[s]) for s in order},
        "churn_risk": int(rows[schema.CHURN_RISK].astype(bool).sum()),
        "manifest_uri": store.uri(prefix + MANIFEST),
    }


def _validation(store: ObjectStore, dataset: str) -> dict[str, Any] | None:
    dates = layout.partition_dates(store.list_prefixes(layout.validation_root(dataset)))
    if not dates:
        return None
    report = store.get_json(layout.validation_report_key(dataset, dates[0]))
    failed = [o for o in report.get("outcomes", []) if not o["success"] and o.get("severity", "fail") != "quarantine"]
    return {
        "dt": dates[0],
        "success": report.get("success"),
        "quarantined": report.get("quarantined", 0),
        "row_counts": report.get("row_counts", {}),
        "broken": failed,
        "report_uri": store.uri(layout.validation_report_key(dataset, dates[0])),
        "data_docs_uri": report.get("data_docs_uri"),
    }


def _outcomes(store: ObjectStore, dataset: str, max_reports: int) -> dict[str, Any] | None:
    """The newest ``max_reports`` outcome reports of ``dataset``: the newest in full, the charted
    metrics as series; None when there is none yet."""
    reports: dict[str, dict[str, Any]] = {}
    for dt in layout.partition_dates(store.list_prefixes(layout.outcomes_root(dataset)))[:max_reports]:
        try:
            reports[dt] = store.get_json(layout.outcomes_report_key(dataset, dt))
        except ObjectNotFoundError:
            continue  # a folder whose report is gone (deleted by hand): the others still chart
    if not reports:
        return None
    newest = next(iter(reports))
    return {
        "dates": list(reports),
        "newest": {
            "dt": newest,
            "report_uri": store.uri(layout.outcomes_report_key(dataset, newest)),
            "report": reports[newest],
        },
        "series": outcome_series(reports),
    }


def outcome_series(reports: dict[str, dict[str, Any]]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``{metric: {arm: [{dt, value, ci_low, ci_high, partial}, ...]}}`` for :data:`CHART_METRICS`,
    oldest report first, arms in :data:`ARMS` order; an arm is listed once a report has it, and a
    metric unavailable in a report has value None there. ``reports`` maps export date to report."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {metric: {} for metric in CHART_METRICS}
    for dt in sorted(reports):
        report = reports[dt]
        for arm in ARMS:
            section = report.get("arms", {}).get(arm)
            if section is None:
                continue
            for metric in CHART_METRICS:
                values = section.get("metrics", {}).get(metric, {})
                out[metric].setdefault(arm, []).append(
                    {
                        "dt": dt,
                        "value": values.get("value"),
                        "ci_low": values.get("ci_low"),
                        "ci_high": values.get("ci_high"),
                        "partial": bool(report.get("partial")),
                    }
                )
    return {metric: {arm: by_arm[arm] for arm in ARMS if arm in by_arm} for metric, by_arm in out.items()}


def page_store() -> ObjectStore:
    """The store the page reads, with short timeouts and few retries so an outage shows in seconds."""
    from recsys_lib.config import load_config

    storage = load_config().storage
    return ObjectStore(
        storage.bucket,
        storage.prefix,
        client_options={"read_timeout": min(storage.read_timeout, 5.0), "max_attempts": min(storage.max_attempts, 2)},
    )
