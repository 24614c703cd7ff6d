"""The publish protocol: staged parts -> partition, manifest, _SUCCESS, then the latest pointer."""

from __future__ import annotations

import threading

import pandas as pd
import pytest

from recsys_lib import schema
from recsys_lib.errors import ExportNotFoundError, StorageError
from recsys_lib.export import read_manifest, read_recommendations
from recsys_lib.export.publish import SHARD_DONE, move_latest_pointer, publish, shard_prefix, stage_parts, staged_parts
from recsys_lib.storage import ObjectStore, layout

TABLE, DATASET = "user_topk", "shop"
MODEL = {"name": "recsys-shop", "version": "1", "run_id": "r1"}


def _rows(users: list[str], k: int = 3, version: str = "1") -> pd.DataFrame:
    return pd.DataFrame(
        {
            schema.USER_ID: [u for u in users for _ in range(k)],
            schema.RANK: list(range(1, k + 1)) * len(users),
            schema.ITEM_ID: [f"i{r}" for _ in users for r in range(k)],
            schema.SCORE: [1.0 / r for _ in users for r in range(1, k + 1)],
            schema.MODEL_NAME: "recsys-shop",
            schema.MODEL_VERSION: version,
            schema.REASON_ITEM_ID: None,
            schema.REASON_KIND: None,
            schema.ARM: "champion",
        }
    ).astype(schema.EXPORT_DTYPES)


def _publish(store: ObjectStore, ds: str, attempt: str, frames: list[pd.DataFrame], rows_per_file: int = 4) -> dict:
    parts = stage_parts(store, TABLE, DATASET, ds, attempt, frames, rows_per_file)
    return publish(store, TABLE, DATASET, ds, attempt, parts, model=MODEL, snapshot_uri="s3://b/snap/")


def test_published_export_reads_back_with_manifest(mock_s3: ObjectStore) -> None:
    manifest = _publish(mock_s3, "2026-01-01", "a1", [_rows(["u1", "u2"]), _rows(["u3"])])
    assert manifest["rows"] == 9 and len(manifest["files"]) == 3  # 4 + 4 + 1 rows
    assert all(f["sha256"] and f["size"] > 0 for f in manifest["files"])
    recs = read_recommendations(mock_s3, DATASET)
    assert len(recs) == 9 and set(recs[schema.USER_ID]) == {"u1", "u2", "u3"}
    assert read_recommendations(mock_s3, DATASET, user_ids=["u2"])[schema.RANK].tolist() == [1, 2, 3]
    assert read_manifest(mock_s3, DATASET)["dt"] == "2026-01-01"
    assert not mock_s3.list_objects(f"exports/{TABLE}/dataset={DATASET}/_staging/")


def test_nothing_is_readable_before_publish(mock_s3: ObjectStore) -> None:
    with pytest.raises(ExportNotFoundError, match="no published"):
        read_recommendations(mock_s3, DATASET)
    stage_parts(mock_s3, TABLE, DATASET, "2026-01-01", "a1", [_rows(["u1"])], 10)
    with pytest.raises(ExportNotFoundError):
        read_recommendations(mock_s3, DATASET)
    with pytest.raises(ExportNotFoundError, match="not published"):
        read_recommendations(mock_s3, DATASET, "2026-01-01")


def test_republishing_a_date_replaces_parts_instead_of_adding(mock_s3: ObjectStore) -> None:
    _publish(mock_s3, "2026-01-01", "a1", [_rows(["u1", "u2", "u3"])])
    manifest = _publish(mock_s3, "2026-01-01", "a2", [_rows(["u1", "u2", "u3"], version="2")])
    keys = [o.key for o in mock_s3.list_objects(layout.export_prefix(TABLE, DATASET, "2026-01-01"))]
    assert sorted(k.rsplit("/", 1)[1] for k in keys if k.endswith(".parquet")) == sorted(
        f["name"] for f in manifest["files"]
    )
    recs = read_recommendations(mock_s3, DATASET)
    assert len(recs) == 9 and set(recs[schema.MODEL_VERSION]) == {"2"}


def test_missing_staged_part_publishes_nothing(mock_s3: ObjectStore) -> None:
    _publish(mock_s3, "2026-01-01", "a1", [_rows(["u1"])])
    pointer_before = mock_s3.get_bytes(layout.latest_pointer_key(TABLE, DATASET))
    parts = stage_parts(mock_s3, TABLE, DATASET, "2026-01-02", "b1", [_rows(["u1", "u2"])], 3)
    mock_s3.delete([shard_prefix(TABLE, DATASET, "2026-01-02", "b1", 0) + parts[1].name])
    with pytest.raises(StorageError, match="missing or differs"):
        publish(mock_s3, TABLE, DATASET, "2026-01-02", "b1", parts, model=MODEL, snapshot_uri="s3://b/s/")
    assert mock_s3.get_bytes(layout.latest_pointer_key(TABLE, DATASET)) == pointer_before
    assert not mock_s3.exists(layout.export_prefix(TABLE, DATASET, "2026-01-02") + "_SUCCESS")


def test_corrupt_published_file_is_detected_by_the_reader(mock_s3: ObjectStore) -> None:
    manifest = _publish(mock_s3, "2026-01-01", "a1", [_rows(["u1"])])
    key = layout.export_prefix(TABLE, DATASET, "2026-01-01") + manifest["files"][0]["name"]
    mock_s3.put_bytes(key, mock_s3.get_bytes(key)[:-10])
    with pytest.raises(StorageError, match="manifest says"):
        read_recommendations(mock_s3, DATASET)


def test_backfill_does_not_move_the_pointer_back(mock_s3: ObjectStore) -> None:
    _publish(mock_s3, "2026-01-05", "a1", [_rows(["u1"])])
    _publish(mock_s3, "2026-01-03", "a2", [_rows(["u9"])])
    assert read_manifest(mock_s3, DATASET)["dt"] == "2026-01-05"
    assert set(read_recommendations(mock_s3, DATASET, "2026-01-03")[schema.USER_ID]) == {"u9"}


def test_a_publish_that_keeps_a_newer_pointer_says_so_naming_that_date(mock_s3: ObjectStore, caplog) -> None:
    _publish(mock_s3, "2026-03-09", "a", [_rows(["u1"])])
    with caplog.at_level("WARNING", logger="recsys_lib.export.publish"):
        manifest = _publish(mock_s3, "2026-03-02", "b", [_rows(["u1"])])
    assert manifest["latest_dt"] == "2026-03-09"
    assert "still points at the newer date 2026-03-09" in caplog.text
    assert _publish(mock_s3, "2026-03-10", "c", [_rows(["u1"])])["latest_dt"] == "2026-03-10"


def test_racing_pointer_writers_leave_one_consistent_winner(mock_s3: ObjectStore) -> None:
    dates = [f"2026-02-{d:02d}" for d in range(1, 9)]
    manifests = {ds: {"attempt": ds, "rows": 1, "model": MODEL, "created_at": "t"} for ds in dates}
    errors: list[BaseException] = []

    def writer(ds: str) -> None:
        try:
            move_latest_pointer(mock_s3, TABLE, DATASET, ds, manifests[ds])
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(ds,)) for ds in dates]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    pointer = mock_s3.get_json(layout.latest_pointer_key(TABLE, DATASET))
    assert pointer["dt"] == max(dates) and pointer["attempt"] == max(dates)


# --- shards -------------------------------------------------------------------------------------
def _stage_shards(store: ObjectStore, ds: str, attempt: str, users_per_shard: list[list[str]]) -> None:
    for shard, users in enumerate(users_per_shard):
        stage_parts(store, TABLE, DATASET, ds, attempt, [_rows(users)], 4, shard=shard)


def test_shards_publish_together_as_one_export(mock_s3: ObjectStore) -> None:
    _stage_shards(mock_s3, "2026-03-01", "s1", [["u1", "u2"], ["u3"], ["u4", "u5"]])
    parts = staged_parts(mock_s3, TABLE, DATASET, "2026-03-01", "s1", 3)
    assert [p.shard for p in parts] == [0, 0, 1, 2, 2]
    publish(mock_s3, TABLE, DATASET, "2026-03-01", "s1", parts, model=MODEL, snapshot_uri="s3://b/s/")
    recs = read_recommendations(mock_s3, DATASET)
    assert len(recs) == 15 and set(recs[schema.USER_ID]) == {"u1", "u2", "u3", "u4", "u5"}


def test_a_shard_rerun_after_a_crash_mid_write_stages_the_same_content(mock_s3: ObjectStore) -> None:
    def crashing():
        yield _rows(["u1", "u2"])
        yield _rows(["u3", "u4"])
        raise RuntimeError("worker killed")

    with pytest.raises(RuntimeError, match="worker killed"):
        stage_parts(mock_s3, TABLE, DATASET, "2026-03-01", "s1", crashing(), 4, shard=1)
    prefix = shard_prefix(TABLE, DATASET, "2026-03-01", "s1", 1)
    assert mock_s3.list_objects(prefix) and not mock_s3.exists(prefix + SHARD_DONE)  # half written, not done
    with pytest.raises(StorageError, match=r"shard\(s\) \[0, 1\] of 2 did not finish"):
        staged_parts(mock_s3, TABLE, DATASET, "2026-03-01", "s1", 2)

    retried = stage_parts(
        mock_s3, TABLE, DATASET, "2026-03-01", "s1", [_rows(["u1", "u2", "u3", "u4", "u5"])], 4, shard=1
    )
    clean = stage_parts(
        mock_s3, TABLE, "other", "2026-03-01", "s1", [_rows(["u1", "u2", "u3", "u4", "u5"])], 4, shard=1
    )
    assert [(p.name, p.rows, p.sha256) for p in retried] == [(p.name, p.rows, p.sha256) for p in clean]
    names = sorted(o.key.rsplit("/", 1)[1] for o in mock_s3.list_objects(prefix))
    assert names == sorted([p.name for p in retried] + [SHARD_DONE])  # nothing left from the crash


@pytest.mark.parametrize("damage", ["missing shard", "corrupt part", "truncated part"])
def test_a_missing_or_corrupt_shard_publishes_nothing_and_keeps_the_pointer(mock_s3: ObjectStore, damage) -> None:
    _publish(mock_s3, "2026-03-01", "a1", [_rows(["u0"])])
    pointer_before = mock_s3.get_bytes(layout.latest_pointer_key(TABLE, DATASET))
    _stage_shards(mock_s3, "2026-03-02", "s1", [["u1"], ["u2"], ["u3"]])
    victim = shard_prefix(TABLE, DATASET, "2026-03-02", "s1", 1)
    if damage == "missing shard":
        mock_s3.delete([o.key for o in mock_s3.list_objects(victim)])
    else:
        part = next(o.key for o in mock_s3.list_objects(victim) if o.key.endswith(".parquet"))
        data = mock_s3.get_bytes(part)
        bad = bytes(b ^ 0xFF for b in data[:8]) + data[8:] if damage == "corrupt part" else data[:-5]
        mock_s3.put_bytes(part, bad)
    with pytest.raises(StorageError, match=r"did not finish|differs from what was staged"):
        parts = staged_parts(mock_s3, TABLE, DATASET, "2026-03-02", "s1", 3)
        publish(mock_s3, TABLE, DATASET, "2026-03-02", "s1", parts, model=MODEL, snapshot_uri="s3://b/s/")
    assert mock_s3.get_bytes(layout.latest_pointer_key(TABLE, DATASET)) == pointer_before
    assert not mock_s3.exists(layout.export_prefix(TABLE, DATASET, "2026-03-02") + "_SUCCESS")
    assert set(read_recommendations(mock_s3, DATASET)[schema.USER_ID]) == {"u0"}
