"""Where an export's plan is stored, and reading one back checked.

The plan (written by the ``plan_export`` task) pins what every shard and the publish must agree on:
the attempt, the shard count, the champion's exact version, the inputs. It lives in the staging
area of ``user_topk``'s attempt, so it is cleared with the staging once the export is published.
"""

from __future__ import annotations

from typing import Any

from recsys_lib.errors import ConfigError, ExportNotFoundError, InvalidObjectError, ObjectNotFoundError, StorageError
from recsys_lib.schema import ExportTable
from recsys_lib.storage import ObjectStore, layout

PLAN = "_plan.json"
_TABLE = ExportTable.USER_TOPK  # the plan is staged with the table whose pointer is the export set's


def plan_key(dataset: str, ds: str, attempt: str) -> str:
    """The plan of export attempt ``attempt`` of ``dataset`` on ``ds``."""
    return layout.export_staging_prefix(_TABLE, dataset, ds, attempt) + PLAN


def read_plan(store: ObjectStore, plan_uri: str, dataset: str, ds: str) -> dict[str, Any]:
    """The export plan at ``plan_uri`` (as ``plan_export`` returned it, ``recsys export`` printed
    it), checked to be a plan of ``dataset`` on ``ds``.

    Raises ConfigError naming ``plan_uri`` when it is not a plan's URI, or is another dataset's or
    date's plan; ExportNotFoundError when no plan is stored there (the export never ran, or a
    publish of it finished and cleared its staging); InvalidObjectError when the object is not a plan.
    """
    try:
        key = store.key_from_uri(plan_uri)
    except StorageError as exc:
        raise ConfigError(f"plan_uri {plan_uri!r} is not an export plan of this store: {exc}") from None
    found = layout.parse_staged_object(key)
    if found is None or found["table"] != _TABLE or found["name"] != PLAN:
        expected = store.uri(layout.export_staging_root(_TABLE, dataset)) + f"dt=<date>/<attempt>/{PLAN}"
        raise ConfigError(
            f"plan_uri {plan_uri!r} is not an export plan: expected {expected}, as `recsys export` prints it"
        )
    if (found["dataset"], found["dt"]) != (dataset, ds):
        raise ConfigError(
            f"plan_uri {plan_uri} is the export plan of dataset {found['dataset']!r} on {found['dt']}, not of "
            f"{dataset!r} on {ds}: pass the plan_uri that `recsys export --dataset {dataset} --ds {ds}` printed"
        )
    try:
        content = store.get_json(key)
    except ObjectNotFoundError:
        raise ExportNotFoundError(
            f"no export plan at {plan_uri}: the export of {dataset!r} on {ds} has not run, or a publish of it "
            "finished and cleared its staging"
        ) from None
    _check_plan(plan_uri, content, dataset, ds, found["attempt"])
    return dict(content)


def _check_plan(uri: str, content: Any, dataset: str, ds: str, attempt: str) -> None:
    """InvalidObjectError naming ``uri`` unless ``content`` has the shape of a plan of ``attempt``."""

    def refuse(what: str) -> InvalidObjectError:
        return InvalidObjectError(f"{uri} is not an export plan: {what}")

    if not isinstance(content, dict):
        raise refuse(f"it holds a JSON {type(content).__name__}, not an object")
    for field, expected in (("dataset", dataset), ("dt", ds), ("attempt", attempt)):
        if content.get(field, expected) != expected:  # dataset and dt are absent from plans of earlier versions
            raise refuse(f"its {field} is {content[field]!r}, its key says {expected!r}")
    shards = content.get("shards")
    if not isinstance(shards, int) or isinstance(shards, bool) or shards < 1:
        raise refuse(f"'shards' is {shards!r}, not a shard count")
    model = content.get("model")
    if not isinstance(model, dict) or not model.get("name") or not model.get("version"):
        raise refuse("'model' gives no model name and version")
    fields = ("attempt", "features_uri", "snapshot_uri", "model_uri")
    missing = [f for f in fields if not isinstance(content.get(f), str)]
    if not isinstance(content.get("k"), int):
        missing.append("k")
    if missing:
        raise refuse(f"it lacks {', '.join(missing)}")
