"""Where the live service's model comes from: the registry's champion, bound to the features the
newest published export was scored from (history and catalogue), so that a request without a
session gets exactly the exported row."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from recsys_lib.config import PipelineConfig
from recsys_lib.errors import ExportNotFoundError
from recsys_lib.export.reader import read_manifest
from recsys_lib.features import FeatureSet
from recsys_lib.registry import mlflow_registry as registry
from recsys_lib.registry.promotion import CHAMPION
from recsys_lib.serving import BundleScorer, ModelBundle
from recsys_lib.serving.live import LiveScorer
from recsys_lib.serving.repurchase import reorders
from recsys_lib.serving.rules import rules_for
from recsys_lib.storage import ObjectStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """What the service should serve: a model version and the features of an export."""

    version: str
    features_uri: str | None = None
    features_dt: str | None = None
    """Date of the export whose features are served from; None: the history the model was trained
    on, and every item available (no export names its features yet)."""


@dataclass(frozen=True)
class Loaded:
    """A model ready to answer requests, and what it is."""

    scorer: LiveScorer
    name: str
    target: Target
    model: str
    loaded_at: datetime

    @property
    def version(self) -> str:
        """The served model version (``local`` for a bundle folder)."""
        return self.target.version


class ChampionSource:
    """The ``champion`` of ``config``'s registered model with the newest export's features."""

    def __init__(self, config: PipelineConfig, store: ObjectStore):
        self.config, self.store = config, store
        self.name = config.registered_model_name
        self._bundle: tuple[str, ModelBundle] | None = None  # the last version loaded, reused for new features

    def target(self) -> Target | None:
        """What to serve now (None: no champion yet); RegistryUnavailableError or StorageError
        when MLflow or S3 cannot be reached."""
        found = registry.version_by_alias(self.name, CHAMPION)
        if found is None:
            return None
        try:
            manifest = read_manifest(self.store, self.config.data.dataset)
        except ExportNotFoundError:
            return Target(found.version)
        if not manifest.get("features_uri"):  # published before manifests named their features
            return Target(found.version)
        return Target(found.version, str(manifest["features_uri"]), str(manifest["dt"]))

    def load(self, target: Target) -> Loaded:
        """``target`` ready to serve; ModelError, StorageError or RegistryUnavailableError when a
        part cannot be read."""
        if self._bundle is None or self._bundle[0] != target.version:
            self._bundle = (target.version, registry.load_bundle(f"models:/{self.name}/{target.version}"))
        bundle = self._bundle[1]
        if target.features_uri is not None:
            features = FeatureSet.load(self.store, self.store.key_from_uri(target.features_uri))
            rules = rules_for(self.config.recommend, features)  # the export's rules and repeat policy
            scorer = bundle.scorer(features, rules=rules)
            live = LiveScorer(scorer, reorders(features, rules))  # the export's buy_again
        else:
            log.warning("no published export names its features: serving from the model's own history")
            live = LiveScorer(BundleScorer.own_users(bundle))
        return Loaded(live, self.name, target, bundle.model.name, datetime.now(UTC))


class BundleFolderSource:
    """A saved bundle folder (``ModelBundle.save``, or an MLflow pyfunc model folder holding one
    under ``artifacts/bundle``), served from its own history with every item available: for
    trying a model before it is registered, and for benchmarks. Loaded once; never changes."""

    def __init__(self, path: str | Path):
        path = Path(path)
        self.path = path / "artifacts" / "bundle" if (path / "artifacts" / "bundle" / "bundle.json").exists() else path
        self.name = f"bundle:{path.name}"

    def target(self) -> Target:
        """Always the same target: the folder never changes, so it is loaded once."""
        return Target("local", str(self.path))

    def load(self, target: Target) -> Loaded:
        """The bundle in the folder, served from its own history; ModelError naming the folder if it holds none."""
        bundle = ModelBundle.load(self.path)  # ModelError naming the folder when it is not a bundle
        scorer = LiveScorer(BundleScorer.own_users(bundle))
        return Loaded(scorer, self.name, target, bundle.model.name, datetime.now(UTC))
