"""Helpers for the integration tests: a synthetic shop written as raw input on the local S3."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from recsys_lib.storage import ObjectStore


def shop_in_store(bucket: str, dataset: str, *, end: datetime, **shop: Any) -> ObjectStore:
    """Generate a synthetic shop (``generate_shop(**shop)``) ending at ``end`` and write it under
    ``raw/<dataset>/`` of ``bucket``; returns the store."""
    from recsys_lib.sources import write_raw
    from recsys_lib.sources.synthetic import generate_shop

    store = ObjectStore(bucket)
    events, items = generate_shop(end=end, **shop)
    write_raw(store, dataset, events, items)
    return store
