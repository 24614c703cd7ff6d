"""The arguments a synthetic shop was generated with, kept next to its raw files.

``recsys generate`` records them as ``raw/<dataset>/_synthetic.json``; ``recsys simulate`` reads
them back to rebuild the shop's planted truth (:func:`~recsys_lib.sources.synthetic.shop_truth`).
Raw readers never see the file: names starting with ``_`` and ``.json`` files are not raw data
(:func:`~recsys_lib.sources.files.list_raw_files`).
"""

from __future__ import annotations

from typing import Any

from recsys_lib.errors import ConfigError, ObjectNotFoundError, SourceError
from recsys_lib.storage import layout
from recsys_lib.storage.objectstore import ObjectStore

PARAMS_NAME = "_synthetic.json"
#: The arguments :func:`~recsys_lib.sources.synthetic.shop_truth` needs; the file may hold more
#: (``days``, ``end``).
TRUTH_KEYS: tuple[str, ...] = ("n_users", "n_items", "n_categories", "n_brands", "seed")


def shop_params_key(dataset: str) -> str:
    """``raw/<dataset>/_synthetic.json``."""
    return layout.raw_prefix(dataset) + PARAMS_NAME


def write_shop_params(store: ObjectStore, dataset: str, params: dict[str, Any]) -> str:
    """Store the generator arguments ``params`` (JSON values) of ``dataset``; returns the URI.

    Raises ConfigError naming the missing keys when ``params`` lacks one of :data:`TRUTH_KEYS`."""
    missing = [k for k in TRUTH_KEYS if k not in params]
    if missing:
        raise ConfigError(f"write_shop_params: params lack {', '.join(missing)} (keys needed: {', '.join(TRUTH_KEYS)})")
    key = shop_params_key(dataset)
    store.put_json(key, params)
    return store.uri(key)


def read_shop_params(store: ObjectStore, dataset: str) -> dict[str, Any]:
    """The generator arguments stored for ``dataset`` (at least :data:`TRUTH_KEYS`).

    Raises SourceError when the file is missing (the dataset was not made by ``recsys generate``)
    or lacks a key.
    """
    key = shop_params_key(dataset)
    try:
        params = store.get_json(key)
    except ObjectNotFoundError:
        raise SourceError(
            f"synthetic_params: no {store.uri(key)}: dataset {dataset!r} was not made by the generator; "
            f"run `recsys generate --dataset {dataset} --partitioned` first"
        ) from None
    missing = [k for k in TRUTH_KEYS if not isinstance(params, dict) or k not in params]
    if missing:
        raise SourceError(f"synthetic_params: {store.uri(key)} lacks {', '.join(missing)}; run `recsys generate` again")
    return dict(params)
