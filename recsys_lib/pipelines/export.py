"""Tasks ``plan_export``, ``export_shard`` (mapped, one per shard) and ``export_items``.

The plan pins everything the shards must agree on (the champion's exact version, the attempt id,
the shard count, which tables, and with ``experiment.challenger_share`` > 0 the challenger's exact
version), so a shard retried an hour later, after an alias has moved, still writes the same
export. In an experiment each shard scores its challenger-arm users (a keyed hash of the user id,
:mod:`recsys_lib.outcomes.arms`) with the challenger and the others with the champion; every row
names its arm and model version. Each shard stages its users' ``user_topk`` (and ``user_embeddings``)
rows under its own prefix and marks itself done last; ``export_items`` stages the item tables and
the shopper profiles (``user_profiles``, one shard). Nothing is visible to readers until ``publish``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from recsys_lib import schema
from recsys_lib.config import ExperimentConfig
from recsys_lib.errors import ConfigError, ModelError
from recsys_lib.export.batch import USER_EMBEDDINGS, USER_TOPK, similar_item_tables, user_tables
from recsys_lib.export.embeddings import item_embedding_tables
from recsys_lib.export.plan import plan_key, read_plan
from recsys_lib.export.pseudonym import pseudonym_key, pseudonymize
from recsys_lib.export.publish import PartStager, stage_parts
from recsys_lib.features import FeatureSet
from recsys_lib.features.profiles import user_profiles
from recsys_lib.outcomes import arms
from recsys_lib.pipelines.context import RunContext
from recsys_lib.registry import mlflow_registry as registry
from recsys_lib.registry.promotion import CHALLENGER, CHAMPION
from recsys_lib.serving.bundle import ModelBundle
from recsys_lib.serving.repurchase import reorders
from recsys_lib.serving.rules import rules_for

log = logging.getLogger(__name__)
#: At most one progress line per this many seconds while a shard scores its users.
PROGRESS_SECONDS = 10.0
TABLE = USER_TOPK
USER_TABLES = (USER_TOPK, USER_EMBEDDINGS)  # sharded by user; item tables are one shard
#: One shard, staged by export_items; its user ids are pseudonymised like USER_TABLES.
PROFILES = schema.ExportTable.USER_PROFILES
BUY_AGAIN = schema.ExportTable.BUY_AGAIN  # the same, with recommend.repeat_purchases: separate
_PROFILE_EVENT_COLUMNS = [*schema.EVENTS_REQUIRED, schema.QUANTITY, schema.PRICE]  # user, item, type, time
_PROFILE_ITEM_COLUMNS = [schema.ITEM_ID, schema.CATEGORY, schema.BRAND, schema.PRICE]


def plan(
    params: Mapping[str, Any] | None, ds: str, *, features_uri: str, snapshot_uri: str, pseudonym: str | None = None
) -> list[dict[str, Any]]:
    """Pin the champion and write the plan; return one small job dict per shard (to map over).

    With ``export.pseudonymize`` on, fails here (ConfigError), before any shard starts, when there
    is no key: ``pseudonym`` (from an Airflow connection) or ``$RECSYS_PSEUDONYM_KEY``."""
    ctx = RunContext.create(params, ds)
    cfg = ctx.config
    champion = registry.version_by_alias(cfg.registered_model_name, CHAMPION)
    if champion is None:
        raise ModelError(f"registered model {cfg.registered_model_name!r} has no '{CHAMPION}' alias; nothing to export")
    attempt = f"v{champion.version}-{uuid.uuid4().hex[:12]}"
    if cfg.export.pseudonymize:
        pseudonym_key(pseudonym)  # fail now, before any shard starts, if there is no key
    shards = cfg.export.shards
    experiment = _experiment(cfg.registered_model_name, champion, cfg.experiment)
    content = {
        "dataset": ctx.dataset,
        "dt": ds,
        "attempt": attempt,
        "shards": shards,
        "features_uri": features_uri,
        "snapshot_uri": snapshot_uri,
        "model": _model(champion),
        "model_uri": champion.model_uri,
        "k": cfg.export.k,
        "pseudonymized": cfg.export.pseudonymize,
        "experiment": experiment,
    }
    key = plan_key(ctx.dataset, ds, attempt)
    ctx.store.put_json(key, content)
    uri = ctx.store.uri(key)
    arms = ""
    if experiment:
        challenger = experiment["arms"]["challenger"]["version"]
        arms = f" and challenger v{challenger} for {experiment['challenger_share']:.0%} of users"
    log.info("export %s: %s v%s%s in %d shard(s), plan %s", attempt, champion.name, champion.version, arms, shards, uri)
    return [{"plan_uri": uri, "shard": shard} for shard in range(shards)]


def _model(version: registry.RegisteredVersion) -> dict[str, Any]:
    return {"name": version.name, "version": version.version, "run_id": version.run_id}


def _experiment(
    model_name: str, champion: registry.RegisteredVersion, settings: ExperimentConfig
) -> dict[str, Any] | None:
    """The experiment the plan pins: both arms' exact versions, or None for champion only (no
    challenger share, or no other version behind the ``challenger`` alias)."""
    if settings.challenger_share == 0:
        return None
    challenger = registry.version_by_alias(model_name, CHALLENGER)
    if challenger is None or challenger.version == champion.version:
        log.warning(
            "experiment.challenger_share is %s but %s has no '%s' version besides the champion: every user "
            "gets the champion's list",
            settings.challenger_share,
            model_name,
            CHALLENGER,
        )
        return None
    return {
        "name": settings.name,
        "challenger_share": settings.challenger_share,
        "arms": {
            arms.CHAMPION: {**_model(champion), "model_uri": champion.model_uri},
            arms.CHALLENGER: {**_model(challenger), "model_uri": challenger.model_uri},
        },
    }


def run_shard(
    params: Mapping[str, Any] | None, ds: str, *, plan_uri: str, shard: int, pseudonym: str | None = None
) -> dict[str, Any]:
    """Stage shard ``shard``'s users: ``user_topk`` and, if the model has vectors, ``user_embeddings``.

    ``pseudonym`` is the pseudonymisation key when the caller has it (an Airflow connection);
    otherwise it is read from the environment.
    """
    ctx = RunContext.create(params, ds)
    cfg = ctx.config.export
    the_plan = read_plan(ctx.store, plan_uri, ctx.dataset, ds)
    if not 0 <= shard < the_plan["shards"]:
        raise ConfigError(f"shard {shard} is not one of the plan's shards 0-{the_plan['shards'] - 1}")
    bundle, features = _load(ctx, the_plan)
    users = np.array_split(np.arange(features.n_users), the_plan["shards"])[shard]
    id_map = None
    if cfg.pseudonymize:
        key = pseudonym_key(pseudonym)
        id_map = lambda ids: pseudonymize(ids, key)  # noqa: E731
    started, done, shown = time.monotonic(), 0, 0.0

    def progress(n: int) -> None:  # a line every PROGRESS_SECONDS, and the last one
        nonlocal done, shown
        done += n
        now = time.monotonic()
        if now - shown >= PROGRESS_SECONDS or done >= len(users):
            shown = now
            rate = done / max(now - started, 1e-9)
            log.info("shard %d: %d/%d users scored (%.0f users/s)", shard, done, len(users), rate)

    rules = rules_for(ctx.config.recommend, features)  # recommend.*: the same in the live service
    scorer = bundle.scorer(features, rules=rules)
    embeddings = cfg.embeddings and scorer.index is not None
    arm_users = {arms.CHAMPION: users}
    experiment: Any = the_plan.get("experiment")  # None, or the arms the plan pinned
    if experiment is not None:
        challenged = arms.in_challenger_arm(
            features.user_ids[users], experiment["name"], experiment["challenger_share"]
        )
        arm_users = {arms.CHAMPION: users[~challenged], arms.CHALLENGER: users[challenged]}
        log.info("shard %d: %d champion and %d challenger users", shard, (~challenged).sum(), challenged.sum())

    def arm_chunks() -> Iterator[dict[str, pa.Table]]:
        for arm, members in arm_users.items():
            model, arm_scorer = the_plan["model"], scorer
            if arm == arms.CHALLENGER:
                model = experiment["arms"][arm]
                arm_scorer = registry.load_bundle(model["model_uri"]).scorer(features, rules=rules)
            yield from user_tables(
                arm_scorer,
                members,
                the_plan["k"],
                model_name=model["name"],
                model_version=model["version"],
                chunk_size=cfg.chunk_size,
                embeddings=embeddings and arm == arms.CHAMPION,  # the vector tables are the champion's
                user_id_map=id_map,
                progress=progress,
                arm=arm,
            )

    chunks = arm_chunks()
    tables = USER_TABLES if embeddings else USER_TABLES[:1]
    with contextlib.ExitStack() as stack:
        stagers: dict[str, PartStager] = {
            table: stack.enter_context(
                PartStager(ctx.store, table, ctx.dataset, ds, the_plan["attempt"], cfg.rows_per_file, shard=shard)
            )
            for table in tables
        }
        for chunk in chunks:
            for table, rows in chunk.items():
                stagers[table].add(rows)
        staged = {table: sum(p.rows for p in stager.finish()) for table, stager in stagers.items()}
    log.info("shard %d of %d staged: %s", shard, the_plan["shards"], staged)
    return {"shard": shard, "rows": staged}


def run_items(
    params: Mapping[str, Any] | None, ds: str, *, plan_uri: str, pseudonym: str | None = None
) -> dict[str, Any]:
    """Stage the item tables: ``item_embeddings`` and ``similar_items`` where the model has them,
    with ``export.profiles`` the shopper profiles (``user_profiles``) of the run's snapshot, and with
    a ``separate`` repeat-purchase policy the ``buy_again`` table.

    ``pseudonym`` is the pseudonymisation key for the profiles' user ids, as in :func:`run_shard`.
    """
    ctx = RunContext.create(params, ds)
    cfg = ctx.config.export
    the_plan = read_plan(ctx.store, plan_uri, ctx.dataset, ds)
    bundle, features = _load(ctx, the_plan)
    model = the_plan["model"]
    staged: dict[str, int] = {}
    stage = _stager(ctx, ds, the_plan["attempt"], cfg.rows_per_file)
    rules = rules_for(ctx.config.recommend, features)  # compiled once: similar items and buy-again read it
    wanted: dict[str, Iterator[pa.Table]] = {}  # generators: nothing is computed before the peek below
    if cfg.embeddings:
        wanted[schema.ExportTable.ITEM_EMBEDDINGS] = item_embedding_tables(
            bundle, model_name=model["name"], model_version=model["version"], chunk_size=cfg.chunk_size
        )
    if cfg.similar_items:
        wanted[schema.ExportTable.SIMILAR_ITEMS] = similar_item_tables(
            bundle.scorer(features, rules=rules),
            cfg.similar_k,
            model_name=model["name"],
            model_version=model["version"],
            chunk_size=cfg.chunk_size,
        )
    if cfg.profiles:
        wanted[PROFILES] = profile_tables(ctx, the_plan["snapshot_uri"], pseudonym)
    top = reorders(features, rules)
    if top is not None:
        wanted[BUY_AGAIN] = buy_again_tables(ctx, features, top, pseudonym)
    for table, tables in wanted.items():
        first = next(tables, None)  # None: the model has no item vectors (or no notion of similarity)
        if first is not None:
            staged[table] = stage(table, itertools.chain([first], tables), 0)
    log.info("item tables and profiles staged: %s", staged or "none (the model has no item vectors or similarity)")
    return {"rows": staged}


def profile_tables(ctx: RunContext, snapshot_uri: str, pseudonym: str | None) -> Iterator[pa.Table]:
    """The snapshot's shopper profiles as one Arrow table, as of its newest event; user ids keyed
    hashes when ``export.pseudonymize`` is on (then ``pseudonym`` or ``$RECSYS_PSEUDONYM_KEY``)."""
    prefix = ctx.store.key_from_uri(snapshot_uri)
    events = ctx.store.get_frame(prefix + "events.parquet", columns=_PROFILE_EVENT_COLUMNS)
    items = ctx.store.get_frame(prefix + "items.parquet", columns=_PROFILE_ITEM_COLUMNS)
    profiles = user_profiles(events, items, as_of=events[schema.TIMESTAMP].max())
    if ctx.config.export.pseudonymize:
        ids = pseudonymize(profiles[schema.USER_ID].to_numpy(), pseudonym_key(pseudonym))
        profiles[schema.USER_ID] = pd.Series(ids, dtype="str")
    # without pandas' metadata: it names pandas-only dtypes (Arrow lists) that plain readers cannot rebuild
    yield pa.Table.from_pandas(profiles, preserve_index=False).replace_schema_metadata(None)


def buy_again_tables(
    ctx: RunContext, features: FeatureSet, top: pd.DataFrame, pseudonym: str | None
) -> Iterator[pa.Table]:
    """The ``buy_again`` list (:func:`~recsys_lib.serving.repurchase.reorders`) as one table, user
    ids hashed as in the user tables; nothing when no shopper has a re-order to list."""
    if top.empty:
        return
    users = features.user_ids[top[schema.USER_IDX].to_numpy(np.int64)].astype(str)
    if ctx.config.export.pseudonymize:
        users = pseudonymize(users, pseudonym_key(pseudonym))
    frame = pd.DataFrame(
        {
            schema.USER_ID: users,
            schema.RANK: top[schema.RANK].to_numpy(np.int32),
            schema.ITEM_ID: features.item_ids[top[schema.ITEM_IDX].to_numpy(np.int64)].astype(str),
            schema.SCORE: top[schema.SCORE].to_numpy(np.float32),
            schema.PURCHASE_COUNT: top["purchases"].to_numpy(np.int32),
            schema.LAST_PURCHASE: top["last"].to_numpy(),
            schema.REASON_KIND: schema.BUY_AGAIN,
        }
    ).astype(schema.BUY_AGAIN_DTYPES)
    yield pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)


def _stager(ctx: RunContext, ds: str, attempt: str, rows_per_file: int) -> Callable[[str, Iterable[Any], int], int]:
    """``stage(table, frames, shard) -> rows``: stage_parts for this run's attempt."""

    def stage(table: str, frames: Iterable[Any], shard: int) -> int:
        parts = stage_parts(ctx.store, table, ctx.dataset, ds, attempt, frames, rows_per_file, shard=shard)
        return sum(p.rows for p in parts)

    return stage


def _load(ctx: RunContext, the_plan: dict[str, Any]) -> tuple[ModelBundle, FeatureSet]:
    bundle = registry.load_bundle(the_plan["model_uri"])
    features = FeatureSet.load(ctx.store, ctx.store.key_from_uri(the_plan["features_uri"]))
    return bundle, features
