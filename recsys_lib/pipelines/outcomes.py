"""Task ``report_outcomes`` (DAG ``recsys_outcomes``, ``recsys outcomes``): what shoppers did with a
published export in the days after it, per experiment arm.

For export date D the events of (D, D + ``outcomes.window_days``] are read from the raw landings
through the dataset's source adapter (so a shop's own column and event names are mapped as for
training); the days that have not landed yet make the report partial. The report goes to
``outcomes/dataset=<d>/dt=<D>/report.json`` and to an MLflow run in the experiment
``<experiment>-outcomes`` (one run per export date, tagged with both arms' model versions, whose
versions get a tag pointing back at it). With ``evaluation.promote_on: online`` the report also
decides promotion: enough complete reports in a row in which the challenger's arm wins move the
``champion`` alias (the decision and its evidence are in the report and on the MLflow run).
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from recsys_lib import schema
from recsys_lib.errors import SourceError
from recsys_lib.export.pseudonym import pseudonym_key, pseudonymize
from recsys_lib.export.reader import read_manifest, read_recommendations
from recsys_lib.outcomes.report import Window, build_report
from recsys_lib.pipelines.context import RunContext
from recsys_lib.registry import mlflow_registry as registry
from recsys_lib.registry.promotion import CHALLENGER, CHAMPION, decide_online
from recsys_lib.sources import read_source
from recsys_lib.storage import layout

log = logging.getLogger(__name__)
_LOOK_BACK = 7  # stored reports read beyond outcomes.min_days (partial ones in between do not count)


def default_export_dt(last_day: str, window_days: int) -> str:
    """The export reported on by default: the one whose window ended with ``last_day``."""
    return (date.fromisoformat(last_day) - timedelta(days=window_days)).isoformat()


def run(params: Mapping[str, Any] | None, ds: str, **options: Any) -> dict[str, Any]:
    """:func:`report` (``options`` are its keyword arguments), returning only what XCom should
    carry: the report's URI, export date, verdict, whether it is partial and the days observed."""
    out, uri = report(params, ds, **options)
    return {
        "report_uri": uri,
        "export_dt": out["window"]["export_dt"],
        "verdict": out["verdict"],
        "partial": out["partial"],
        "days_observed": out["window"]["days_observed"],
    }


def report(
    params: Mapping[str, Any] | None,
    ds: str,
    *,
    export_dt: str | None = None,
    interval_end: str | None = None,
    log_to_mlflow: bool = True,
    pseudonym: str | None = None,
) -> tuple[dict[str, Any], str]:
    """Report on the export of ``export_dt`` (default: the last day of the data interval minus the
    window) with the events landed up to that last day (``ds`` itself without ``interval_end``;
    see :attr:`RunContext.last_day`); write it (and, with ``log_to_mlflow``, its MLflow run).
    Returns the report and its URI. An export of pseudonymised user ids is joined to the events
    through the same keyed hash: the key is ``pseudonym`` (an Airflow connection's) or
    ``$RECSYS_PSEUDONYM_KEY``.

    A partial report never replaces a stored complete one: it is returned with ``stored`` False,
    not written, not logged. Raises ExportNotFoundError when that export was never published and
    SourceError (rule ``empty_window``) when no events after it have landed yet.
    """
    ctx = RunContext.create(params, ds, interval_end=interval_end)
    cfg, as_of = ctx.config, ctx.last_day
    window_days = cfg.outcomes.window_days
    export_dt = layout.check_ds(export_dt or default_export_dt(as_of, window_days))
    manifest = read_manifest(ctx.store, ctx.dataset, export_dt)
    recs = read_recommendations(ctx.store, ctx.dataset, export_dt)
    observed = min((date.fromisoformat(as_of) - date.fromisoformat(export_dt)).days, window_days)
    if observed < 1:
        raise SourceError(
            f"empty_window: the outcome window of the {export_dt} export starts on the day after it; "
            f"report on it once a later day than {as_of} has landed"
        )
    last_day = (date.fromisoformat(export_dt) + timedelta(days=observed)).isoformat()
    data = cfg.data.model_copy(update={"window_days": observed})
    tables = read_source(ctx.store, data, last_day)
    if tables.files is not None and not tables.files.flat:
        observed = len(tables.files.days)  # landings, not calendar days: a missing day is not observed
    window = Window(export_dt, window_days, observed)
    events = tables.events
    if manifest.get("pseudonymized"):
        events = _pseudonymized(events, pseudonym_key(pseudonym))
    out = build_report(recs, events, window, cfg.outcomes)
    out.update(dataset=ctx.dataset, experiment=manifest.get("experiment"), as_of=as_of, promotion=None)
    key = layout.outcomes_report_key(ctx.dataset, export_dt)
    uri = ctx.store.uri(key)
    if out["partial"] and ctx.store.exists(key) and not ctx.store.get_json(key).get("partial", True):
        log.warning(
            "a complete report of the %s export is stored at %s; this partial one (%d of %d days) does not replace it",
            export_dt,
            uri,
            window.days_observed,
            window_days,
        )
        return {**out, "stored": False}, uri
    if cfg.evaluation.promote_on == "online":
        out["promotion"] = _promote_on_evidence(ctx, out)
    if log_to_mlflow:
        out["mlflow_run_id"] = _log(ctx, out)
    ctx.store.put_json(key, out)
    log.info(
        "outcomes of the %s export (%d of %d days observed): verdict %s; report %s",
        export_dt,
        window.days_observed,
        window_days,
        out["verdict"],
        uri,
    )
    return out, uri


def _pseudonymized(events: pd.DataFrame, key: bytes) -> pd.DataFrame:
    """``events`` with user ids replaced by the export's pseudonyms (each distinct id hashed once)."""
    users = events[schema.USER_ID]
    distinct = users.drop_duplicates().to_numpy()
    mapping = pd.Series(pseudonymize(distinct, key), index=distinct)
    return events.assign(**{schema.USER_ID: users.map(mapping)})


def _promote_on_evidence(ctx: RunContext, current: dict[str, Any]) -> dict[str, Any]:
    """``evaluation.promote_on: online``: move ``champion`` to the challenger's version when the
    newest complete reports (this one and those stored) are evidence enough (:func:`decide_online`);
    the old champion keeps no alias and the ``challenger`` alias is removed. Returns the decision."""
    cfg = ctx.config
    name = cfg.registered_model_name
    champion = registry.version_by_alias(name, CHAMPION)
    challenger = registry.version_by_alias(name, CHALLENGER)
    if champion is None or challenger is None or champion.version == challenger.version:
        return {"promote": False, "reason": f"{name} has no challenger besides the champion", "evidence": []}
    dates = layout.partition_dates(ctx.store.list_prefixes(layout.outcomes_root(ctx.dataset)))
    export_dt = current["window"]["export_dt"]
    stored = [
        ctx.store.get_json(layout.outcomes_report_key(ctx.dataset, d))
        for d in dates[: cfg.outcomes.min_days + _LOOK_BACK]
        if d != export_dt
    ]
    decision = decide_online(
        [current, *stored],
        champion=champion.version,
        challenger=challenger.version,
        min_days=cfg.outcomes.min_days,
        primary_metric=cfg.outcomes.primary_metric,
    )
    if decision.promote:
        registry.set_alias(name, CHAMPION, challenger.version)
        registry.delete_alias(name, CHALLENGER)
        registry.set_version_tags(name, challenger.version, {"recsys.decision": decision.reason})
        log.warning("online promotion: %s v%s is now champion: %s", name, challenger.version, decision.reason)
    else:
        log.info("online promotion: not yet: %s", decision.reason)
    return {**decision.to_dict(), "champion_before": champion.version, "challenger": challenger.version}


def _log(ctx: RunContext, report: dict[str, Any]) -> str:
    """One MLflow run per report: arm metrics with intervals, differences and adjusted p-values,
    the report as an artifact; both model versions tagged with the run id."""
    cfg = ctx.config
    export_dt = report["window"]["export_dt"]
    arms = report["arms"]
    tags = ctx.lineage_tags(**{"recsys.export_dt": export_dt, "recsys.verdict": report["verdict"]})
    if report.get("promotion"):
        promoted = report["promotion"]["promote"]
        tags["recsys.promotion"] = "promoted" if promoted else "kept"
        tags["recsys.promotion_reason"] = report["promotion"]["reason"][:5000]
    for arm, section in arms.items():
        tags[f"recsys.{arm}_version"] = f"{section['model']['name']}/{section['model']['version']}"
    params = {
        "export_dt": export_dt,
        "window_days": report["window"]["window_days"],
        "primary_metric": report["primary_metric"],
        "alpha": report["alpha"],
    }
    run_id = registry.start_run(
        f"{cfg.experiment_name}-outcomes",
        f"outcomes-{export_dt}",
        tags=tags,
        params=params,
        source=__name__,
        git_commit=tags["recsys.git_commit"],
    )
    metrics: dict[str, float] = {"days_observed": report["window"]["days_observed"]}
    for arm, section in arms.items():
        metrics[f"{arm}.exposed"] = section["exposed"]
        for name, values in section["metrics"].items():
            for field in ("value", "ci_low", "ci_high"):
                if values.get(field) is not None:
                    metrics[f"{arm}.{name}" + ("" if field == "value" else f".{field}")] = values[field]
    for name, values in (report["comparison"] or {}).get("metrics", {}).items():
        for field, label in (("value", "diff"), ("p_adjusted", "p_adjusted")):
            if values.get(field) is not None:
                metrics[f"{label}.{name}"] = values[field]
    registry.log_metrics(run_id, metrics)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "report.json").write_text(json.dumps(report, indent=2))
        registry.log_artifacts(run_id, tmp, "outcomes")
    registry.end_run(run_id)
    for section in arms.values():
        registry.set_version_tags(
            section["model"]["name"], section["model"]["version"], {f"outcomes.{export_dt}": run_id}
        )
    return run_id
