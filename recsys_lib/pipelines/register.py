"""Task ``evaluate_and_register``: test metrics for the new model, the popularity baseline and the
current champion on the same split; register the new version; move ``champion`` only if it wins."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from recsys_lib import schema
from recsys_lib.config import ModelConfig, TrainConfig
from recsys_lib.errors import RegistryUnavailableError
from recsys_lib.evaluation import plots
from recsys_lib.evaluation.exposure import popularity_exposure, tail_share
from recsys_lib.features import FeatureSet
from recsys_lib.models import create_model
from recsys_lib.pipelines.context import RunContext
from recsys_lib.registry import mlflow_registry as registry
from recsys_lib.registry.promotion import CHAMPION, decide_alias
from recsys_lib.serving.bundle import ModelBundle
from recsys_lib.serving.evaluate import BundleEvaluation, evaluate_bundle_lists

log = logging.getLogger(__name__)
#: The list length the long-tail exposure is measured at.
LONG_TAIL_K = 10


def run(
    params: Mapping[str, Any] | None, ds: str, *, features_uri: str, run_id: str, bundle_uri: str
) -> dict[str, Any]:
    """Evaluate, register and alias the new version; returns the decision.

    Raises RegistryUnavailableError when the MLflow tracking server cannot be reached: the message says that no
    alias was moved (the alias is always the last write) and whether a version was registered.
    The task is safe to retry: a retry registers a new version and decides again.
    """
    done: dict[str, str] = {}
    try:
        with registry.unreachable_as_model_error("evaluating and registering the new model"):
            return _register(params, ds, features_uri=features_uri, run_id=run_id, bundle_uri=bundle_uri, done=done)
    except RegistryUnavailableError as exc:
        registered = f"version {done['version']} was registered without an alias" if done else "no version registered"
        raise RegistryUnavailableError(
            f"{exc}; no alias was changed, {registered}; retry once the server is back"
        ) from exc


def _register(
    params: Mapping[str, Any] | None,
    ds: str,
    *,
    features_uri: str,
    run_id: str,
    bundle_uri: str,
    done: dict[str, str],
) -> dict[str, Any]:
    ctx = RunContext.create(params, ds)
    cfg, ks, metric = ctx.config, ctx.config.evaluation.ks, ctx.config.evaluation.promotion_metric
    features = FeatureSet.load(ctx.store, ctx.store.key_from_uri(features_uri))
    with tempfile.TemporaryDirectory() as tmp:
        bundle_dir = ctx.store.get_dir(ctx.store.key_from_uri(bundle_uri), tmp)
        bundle = ModelBundle.load(bundle_dir)
        evaluated = {"new model": evaluate_bundle_lists(bundle, features, ks=ks)}
        evaluated["popularity"] = evaluate_bundle_lists(_popularity_bundle(features), features, ks=ks)
        champion = registry.version_by_alias(cfg.registered_model_name, CHAMPION)
        if champion:
            label = f"champion v{champion.version}"
            evaluated[label] = evaluate_bundle_lists(registry.load_bundle(champion.model_uri), features, ks=ks)
        new, baseline = evaluated["new model"].metrics, evaluated["popularity"].metrics
        champ = evaluated[label].metrics if champion else None
        exposure = _log_comparison(run_id, features, evaluated, ks)
        lineage = _lineage(ctx, bundle)
        version = registry.log_and_register(
            run_id, bundle, bundle_dir, cfg.registered_model_name, list(features.user_ids[:3]), tags=lineage
        )
        done["version"] = version.version
        model_metrics = {
            **{f"test_{k}": v for k, v in new.items()},
            f"test_tail_share_at_{LONG_TAIL_K}": tail_share(exposure["new model"]),
            **{f"baseline_test_{k}": v for k, v in baseline.items()},
        }
        registry.log_metrics(run_id, model_metrics, model_id=version.model_id)  # the run's and the model's
        if champ:
            registry.log_metrics(run_id, {f"champion_test_{k}": v for k, v in champ.items()})
    decision = decide_alias(
        new[metric],
        champ[metric] if champ else None,
        min_improvement=cfg.evaluation.min_improvement,
        force=cfg.evaluation.force_promote,
        online=cfg.evaluation.promote_on == "online",
    )
    registry.set_version_tags(
        version.name,
        version.version,
        {**lineage, metric: f"{new[metric]:.6f}", "recsys.decision": decision.reason},
    )
    registry.set_alias(version.name, decision.alias, version.version)
    log.info(
        "registered %s v%s as %s: %s (popularity %s=%.4f)",
        version.name,
        version.version,
        decision.alias,
        decision.reason,
        metric,
        baseline[metric],
    )
    return {
        "model_name": version.name,
        "version": version.version,
        "alias": decision.alias,
        "run_id": run_id,
        metric: new[metric],
        f"baseline_{metric}": baseline[metric],
        "champion_version": champion.version if champion else None,
    }


def _lineage(ctx: RunContext, bundle: ModelBundle) -> dict[str, str]:
    """What the new version was trained on, as tags of its LoggedModel and registered version:
    dataset, logical date, model and the data snapshot's URI (from the bundle's training metadata)."""
    tags = {"recsys.dataset": ctx.dataset, "recsys.logical_date": ctx.ds, "recsys.model": ctx.config.model.name}
    if bundle.metadata.get("snapshot_uri"):
        tags["recsys.snapshot_uri"] = str(bundle.metadata["snapshot_uri"])
    return tags


def _log_comparison(
    run_id: str, features: FeatureSet, evaluated: dict[str, BundleEvaluation], ks: tuple[int, ...]
) -> dict[str, np.ndarray]:
    """Log ``plots/metrics_at_k.png`` and ``plots/long_tail.png`` (new model, popularity and the
    champion on the same test users); return each model's long-tail exposure at LONG_TAIL_K."""
    popularity = np.bincount(features.train[schema.ITEM_IDX].to_numpy(), minlength=features.n_items)
    exposure = {label: popularity_exposure(e.recommended, popularity, k=LONG_TAIL_K) for label, e in evaluated.items()}
    registry.log_figure(
        run_id, plots.metrics_at_k({k: e.metrics for k, e in evaluated.items()}, ks), "plots/metrics_at_k.png"
    )
    registry.log_figure(run_id, plots.long_tail(exposure, k=LONG_TAIL_K), "plots/long_tail.png")
    return exposure


def _popularity_bundle(features: FeatureSet) -> ModelBundle:
    model = create_model(ModelConfig(name="popularity"), features.n_users, features.n_items)
    return ModelBundle.from_training(model.fit(features, TrainConfig()), features)
