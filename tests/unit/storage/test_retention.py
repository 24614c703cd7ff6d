"""Retention: old intermediate partitions and abandoned export staging go; published exports stay."""

from __future__ import annotations

from recsys_lib.storage import ObjectStore, layout
from recsys_lib.storage.retention import clear_staging, prune


def _keys(store: ObjectStore) -> set[str]:
    return {o.key for o in store.list_objects("")}


def test_prune_deletes_intermediate_partitions_older_than_the_retention(mock_s3: ObjectStore) -> None:
    for ds in ("2026-01-01", "2026-01-05", "2026-01-09", "2026-01-10"):
        mock_s3.put_bytes(layout.snapshot_key("shop", ds, "events"), b"x")
        mock_s3.put_bytes(layout.features_prefix("shop", ds) + "train.parquet", b"x")
        mock_s3.put_bytes(layout.export_staging_prefix("user_topk", "shop", ds, "a1") + "part.parquet", b"x")
        mock_s3.put_bytes(layout.export_prefix("user_topk", "shop", ds) + "_manifest.json", b"{}")
        mock_s3.put_bytes(layout.validation_report_key("shop", ds), b"{}")
    mock_s3.put_bytes(layout.snapshot_key("other", "2026-01-01", "events"), b"x")
    deleted = prune(mock_s3, "shop", "2026-01-10", keep_days=5)
    assert deleted == {"snapshots": 1, "features": 1, "user_topk/_staging": 1}
    keys = _keys(mock_s3)
    assert layout.snapshot_key("shop", "2026-01-05", "events") in keys  # exactly 5 days old: kept
    assert layout.snapshot_key("shop", "2026-01-01", "events") not in keys
    assert layout.snapshot_key("other", "2026-01-01", "events") in keys  # another dataset
    assert layout.export_prefix("user_topk", "shop", "2026-01-01") + "_manifest.json" in keys  # published: kept
    assert layout.validation_report_key("shop", "2026-01-01") in keys


def test_clear_staging_removes_every_attempt_of_the_date_only(mock_s3: ObjectStore) -> None:
    for attempt in ("interrupted", "published"):
        for table in ("user_topk", "similar_items"):
            key = layout.export_staging_prefix(table, "shop", "2026-01-10", attempt) + "shard=0/part-0.parquet"
            mock_s3.put_bytes(key, b"x")
    other = layout.export_staging_prefix("user_topk", "shop", "2026-01-11", "running") + "part.parquet"
    mock_s3.put_bytes(other, b"x")
    assert clear_staging(mock_s3, "shop", "2026-01-10") == 4
    assert _keys(mock_s3) == {other}
