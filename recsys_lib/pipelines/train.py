"""Task ``train``: fit the configured model, log params and per-epoch metrics to an MLflow run
(the metrics through Lightning's logger, :class:`~recsys_lib.training.RunLogger`), and store the
model bundle next to the features (registration is the next task)."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from typing import Any

from recsys_lib.features import FeatureSet
from recsys_lib.models import create_model
from recsys_lib.pipelines.context import RunContext, flatten
from recsys_lib.registry import mlflow_registry as registry
from recsys_lib.registry.connection import tracking_uri
from recsys_lib.serving.bundle import ModelBundle
from recsys_lib.storage import layout
from recsys_lib.training import RunLogger

log = logging.getLogger(__name__)
#: Rows of the snapshot MLflow infers the logged dataset's schema from (not the whole table).
_SCHEMA_SAMPLE_ROWS = 10_000


def run(
    params: Mapping[str, Any] | None,
    ds: str,
    *,
    features_uri: str,
    snapshot_uri: str,
    dag_run_id: str | None = None,
) -> dict[str, Any]:
    """Fit the configured model on the features at ``features_uri`` in an MLflow run (a new one, or
    the ``mlflow run`` project's) with params, the validation report, the snapshot as its input and
    per-epoch metrics, and store the model bundle under ``models/``. The run ends ``FAILED`` if
    anything raises. Returns ``run_id``, ``bundle_uri`` and the model name."""
    ctx = RunContext.create(params, ds, dag_run_id=dag_run_id)
    cfg = ctx.config
    features = FeatureSet.load(ctx.store, ctx.store.key_from_uri(features_uri))
    model = create_model(cfg.model, features.n_users, features.n_items)
    tags = ctx.lineage_tags(**{"recsys.snapshot_uri": snapshot_uri, "recsys.model": cfg.model.name})
    run_id = registry.start_run(
        cfg.experiment_name,
        run_name=f"{cfg.model.name}-{ds}",
        tags=tags,
        params={
            **flatten(cfg),
            "data.n_users": features.n_users,
            "data.n_items": features.n_items,
            "data.train_pairs": len(features.train),
        },
        source=__name__,
        git_commit=tags["recsys.git_commit"],
    )
    _log_validation(ctx, run_id)
    snapshot = ctx.store.key_from_uri(snapshot_uri) + "events.parquet"
    sample, etag = ctx.store.get_frame_sample(snapshot, rows=_SCHEMA_SAMPLE_ROWS)
    registry.log_input(
        run_id, sample, source=ctx.store.uri(snapshot), name=f"{ctx.dataset}-{ds}", digest=etag.strip('"')
    )
    log.info(
        "training %s on %d users x %d items (MLflow run %s)", cfg.model.name, features.n_users, features.n_items, run_id
    )

    planned = model.planned_epochs(cfg.train)

    def on_epoch_end(epoch: int, metrics: dict[str, float]) -> None:  # the metrics reach MLflow through the logger
        log.info("epoch %d/%d %s", epoch + 1, planned, " ".join(f"{k}={v:.4f}" for k, v in metrics.items()))

    try:
        model.fit(features, cfg.train, on_epoch_end=on_epoch_end, logger=RunLogger(tracking_uri(), run_id))
        bundle = ModelBundle.from_training(
            model, features, run_id=run_id, ds=ds, snapshot_uri=snapshot_uri, features_uri=features_uri
        )
        prefix = layout.model_prefix(ctx.dataset, ds, run_id)
        with tempfile.TemporaryDirectory() as tmp:
            ctx.store.put_dir(bundle.save(tmp), prefix)
    except BaseException:
        registry.end_run(run_id, "FAILED")
        raise
    registry.end_run(run_id)
    return {"run_id": run_id, "bundle_uri": ctx.store.uri(prefix), "model": cfg.model.name}


def _log_validation(ctx: RunContext, run_id: str) -> None:
    """Attach the snapshot's validation (report.json and the Data Docs site) to the MLflow run,
    under ``validation/``, so a data scientist sees what the model was trained on passing."""
    prefix = layout.validation_prefix(ctx.dataset, ctx.ds)
    if not ctx.store.exists(prefix + "report.json"):
        log.warning("no validation report at %s; nothing attached to the run", ctx.store.uri(prefix))
        return
    with tempfile.TemporaryDirectory() as tmp:
        registry.log_artifacts(run_id, ctx.store.get_dir(prefix, tmp), "validation")
