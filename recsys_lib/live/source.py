"""Where the live service's model comes from: the registry's champion, bound to the features the
newest published export was scored from (history and catalogue) and, when that export was made
by the served model (same version and run), to the user vectors it published, so that a request
without a session gets exactly the exported row."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from recsys_lib import schema
from recsys_lib.config import PipelineConfig
from recsys_lib.errors import ConfigError, ExportNotFoundError, StorageError
from recsys_lib.export.pseudonym import pseudonym_key, pseudonymize
from recsys_lib.export.reader import read_embeddings, read_manifest
from recsys_lib.features import FeatureSet
from recsys_lib.registry import mlflow_registry as registry
from recsys_lib.registry.promotion import CHAMPION
from recsys_lib.serving import BundleScorer, ModelBundle
from recsys_lib.serving.live import LiveScorer, UserVectors
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
    run_id: str | None = None
    """The MLflow run that logged the version (version numbers restart with a new registry)."""
    attempt: str | None = None
    """The export attempt that published ``features_dt`` (a date re-published is a new target)."""


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

    @property
    def user_vectors(self) -> str | None:
        """Where known users' vectors come from when they have no session (the export's
        ``user_embeddings``); None: the model computes them per request."""
        vectors = self.scorer.user_vectors
        return None if vectors is None else vectors.source


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
        attempt = manifest.get("attempt")
        return Target(
            found.version,
            str(manifest["features_uri"]),
            str(manifest["dt"]),
            found.run_id,
            None if attempt is None else str(attempt),
        )

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
            vectors = published_user_vectors(self.store, self.config.data.dataset, target, scorer)
            live = LiveScorer(scorer, reorders(features, rules), vectors)  # the export's buy_again
        else:
            log.warning("no published export names its features: serving from the model's own history")
            live = LiveScorer(BundleScorer.own_users(bundle))
        return Loaded(live, self.name, target, bundle.model.name, datetime.now(UTC))


def published_user_vectors(
    store: ObjectStore, dataset: str, target: Target, scorer: BundleScorer
) -> UserVectors | None:
    """The user vectors the export of ``target.features_dt`` published, if the same export attempt
    published them (not an earlier publish of that date) from the served model (``target``'s
    version and run) and its user ids match ``scorer``'s (pseudonymised ids need the export's key,
    ``$RECSYS_PSEUDONYM_KEY``). None otherwise, for a model without vectors, and when they cannot
    be read (they are optional: the load goes on and requests compute the vectors)."""
    if scorer.index is None or target.features_dt is None:
        return None
    dt = target.features_dt
    try:
        found = read_embeddings(store, dataset, dt, schema.ExportTable.USER_EMBEDDINGS)
    except ExportNotFoundError:
        return None  # export.embeddings off, or published before there were any
    except (StorageError, ValueError, pa.ArrowException) as exc:
        log.warning("the %s export's user vectors cannot be read (%s): computed per request", dt, exc)
        return None
    model = found.manifest.get("model") or {}
    published = (str(model.get("version")), model.get("run_id"), found.manifest.get("attempt"))
    if published != (target.version, target.run_id, target.attempt):
        log.info(
            "the %s export's user vectors (version, run, attempt %s) are not the served %s: computed per request",
            dt,
            published,
            (target.version, target.run_id, target.attempt),
        )
        return None
    ids = scorer.user_ids.astype(str)
    if found.manifest.get("pseudonymized"):
        try:
            ids = pseudonymize(ids, pseudonym_key())
        except ConfigError as exc:
            log.warning("the %s export's user ids are pseudonymised (%s): user vectors computed per request", dt, exc)
            return None
    vectors = UserVectors.align(ids, found.ids, found.vectors, f"{schema.ExportTable.USER_EMBEDDINGS} of {dt}")
    matched = int((vectors.row_of >= 0).sum())
    if matched != len(found.ids):  # the same features made both: every exported id is one of the scorer's
        log.warning(
            "only %d of the %s export's %d user vectors match a user of its features (a different pseudonym "
            "key?): computed per request",
            matched,
            dt,
            len(found.ids),
        )
        return None
    return vectors


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
