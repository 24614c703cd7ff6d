"""Task ``evaluate_and_register``: test metrics for the new model, the popularity baseline and the
current champion on the same split; register the new version; move ``champion`` only if it wins."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from typing import Any

from recsys_lib.config import ModelConfig, TrainConfig
from recsys_lib.errors import RegistryUnavailableError
from recsys_lib.evaluation.bundle import evaluate_bundle
from recsys_lib.features import FeatureSet
from recsys_lib.models import create_model
from recsys_lib.models.bundle import ModelBundle
from recsys_lib.pipelines.context import RunContext
from recsys_lib.registry import mlflow_registry as registry
from recsys_lib.registry.promotion import CHAMPION, decide_alias

log = logging.getLogger(__name__)


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
        new = evaluate_bundle(bundle, features, ks=ks)
        baseline = evaluate_bundle(_popularity_bundle(features), features, ks=ks)
        champion = registry.version_by_alias(cfg.registered_model_name, CHAMPION)
        champ = evaluate_bundle(registry.load_bundle(champion.model_uri), features, ks=ks) if champion else None
        registry.log_metrics(run_id, {f"test_{k}": v for k, v in new.items()})
        registry.log_metrics(run_id, {f"baseline_test_{k}": v for k, v in baseline.items()})
        if champ:
            registry.log_metrics(run_id, {f"champion_test_{k}": v for k, v in champ.items()})
        version = registry.log_and_register(
            run_id, bundle, bundle_dir, cfg.registered_model_name, list(features.user_ids[:3])
        )
        done["version"] = version.version
    decision = decide_alias(
        new[metric],
        champ[metric] if champ else None,
        min_improvement=cfg.evaluation.min_improvement,
        force=cfg.evaluation.force_promote,
    )
    registry.set_version_tags(
        version.name,
        version.version,
        {
            "recsys.logical_date": ds,
            metric: f"{new[metric]:.6f}",
            "recsys.decision": decision.reason,
            "recsys.model": cfg.model.name,
        },
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


def _popularity_bundle(features: FeatureSet) -> ModelBundle:
    model = create_model(ModelConfig(name="popularity"), features.n_users, features.n_items)
    return ModelBundle.from_training(model.fit(features, TrainConfig()), features)
