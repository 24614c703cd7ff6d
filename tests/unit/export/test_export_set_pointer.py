"""One pointer for the export set: a publish that fails between two tables leaves every table's
"latest" on the previous export (never user_topk of one day with similar items of another), and
its retry completes the set."""

from __future__ import annotations

import pytest

from recsys_lib import schema
from recsys_lib.errors import StorageError
from recsys_lib.export import read_recommendations
from recsys_lib.pipelines import publish
from recsys_lib.storage import ObjectStore, layout
from tests.staged_export import TABLES, latest_versions, stage_export

DATASET, DAY1, DAY2 = "set-shop", "2026-06-01", "2026-06-02"
USERS = ["shopper-1", "shopper-2"]
PARAMS = {"dataset": DATASET}


@pytest.fixture
def store(mock_s3: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> ObjectStore:
    monkeypatch.setenv("RECSYS_BUCKET", mock_s3.bucket)
    monkeypatch.setenv("RECSYS_PREFIX", mock_s3.prefix)
    publish.run(PARAMS, DAY1, plan_uri=stage_export(mock_s3, DATASET, DAY1, "1", USERS))
    return mock_s3


def test_a_publish_failing_between_tables_keeps_every_table_on_the_previous_export(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert latest_versions(store, DATASET) == {t: {"1"} for t in TABLES}
    plan_uri = stage_export(store, DATASET, DAY2, "2", USERS)
    published: list[str] = []
    real = publish.publish_partition

    def fails_after_the_first_table(store: ObjectStore, table: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        if published:
            raise StorageError("the S3 endpoint went away between two tables")
        published.append(table)
        return real(store, table, *args, **kwargs)

    monkeypatch.setattr(publish, "publish_partition", fails_after_the_first_table)
    with pytest.raises(StorageError, match="between two tables"):
        publish.run(PARAMS, DAY2, plan_uri=plan_uri)
    assert published == ["item_embeddings"]  # its day-2 partition is complete ...
    day2 = read_recommendations(store, DATASET, DAY2, table="item_embeddings")
    assert set(day2[schema.MODEL_VERSION]) == {"2"}
    assert latest_versions(store, DATASET) == {t: {"1"} for t in TABLES}  # ... but no table's latest moved

    monkeypatch.setattr(publish, "publish_partition", real)
    out = publish.run(PARAMS, DAY2, plan_uri=plan_uri)  # the task's retry takes item_embeddings as it is
    assert out["latest_dt"] == DAY2 and out["tables"] == {"item_embeddings": 3, "similar_items": 3, "user_topk": 6}
    assert latest_versions(store, DATASET) == {t: {"2"} for t in TABLES}
    pointer = store.get_json(layout.export_set_pointer_key(DATASET))
    assert pointer["dt"] == DAY2 and sorted(pointer["tables"]) == sorted(TABLES)
    assert not [o.key for o in store.list_objects("exports/") if "/_staging/" in o.key]


def test_per_table_pointers_of_earlier_versions_are_removed(store: ObjectStore) -> None:
    legacy = layout.latest_pointer_key("similar_items", DATASET)
    store.put_json(legacy, {"dt": DAY1, "manifest": "..."})  # what each table had before one pointer for all
    publish.run(PARAMS, DAY2, plan_uri=stage_export(store, DATASET, DAY2, "2", USERS))
    assert not store.exists(legacy)
    assert store.exists(layout.export_set_pointer_key(DATASET))
    assert latest_versions(store, DATASET) == {t: {"2"} for t in TABLES}


def test_a_backfill_publishes_its_date_and_leaves_every_table_on_the_newer_export(store: ObjectStore) -> None:
    publish.run(PARAMS, DAY2, plan_uri=stage_export(store, DATASET, DAY2, "2", USERS))
    out = publish.run(PARAMS, "2026-05-31", plan_uri=stage_export(store, DATASET, "2026-05-31", "3", USERS))
    assert out["latest_dt"] == DAY2
    assert latest_versions(store, DATASET) == {t: {"2"} for t in TABLES}
    backfilled = read_recommendations(store, DATASET, "2026-05-31", table="similar_items")
    assert set(backfilled[schema.MODEL_VERSION]) == {"3"}
