"""The export reader trusts nothing unchecked: a part altered in place (same size, other user ids)
is refused by its SHA-256, and a pointer or manifest of the wrong shape is refused naming the object."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys_lib import schema
from recsys_lib.errors import ExportNotFoundError, InvalidObjectError
from recsys_lib.export import read_manifest, read_recommendations
from recsys_lib.export.publish import MANIFEST, publish, stage_parts
from recsys_lib.storage import ObjectStore, layout

TABLE, DATASET, DS = "user_topk", "shop", "2026-04-01"
MODEL = {"name": "recsys-shop", "version": "1", "run_id": "r1"}


def _published(store: ObjectStore, users: list[str]) -> dict:
    rows = pd.DataFrame(
        {
            schema.USER_ID: [u for u in users for _ in range(2)],
            schema.RANK: [1, 2] * len(users),
            schema.ITEM_ID: ["item-a", "item-b"] * len(users),
            schema.SCORE: [1.0, 0.5] * len(users),
            schema.MODEL_NAME: "recsys-shop",
            schema.MODEL_VERSION: "1",
            schema.REASON_ITEM_ID: None,
            schema.REASON_KIND: None,
            schema.ARM: "champion",
        }
    ).astype(schema.EXPORT_DTYPES)
    parts = stage_parts(store, TABLE, DATASET, DS, "a1", [rows], 100)
    return publish(store, TABLE, DATASET, DS, "a1", parts, model=MODEL, snapshot_uri="s3://b/s/")


def test_a_part_altered_at_the_same_size_is_refused_by_its_checksum(mock_s3: ObjectStore) -> None:
    manifest = _published(mock_s3, ["shopper-ann", "shopper-bob"])
    key = layout.export_prefix(TABLE, DATASET, DS) + manifest["files"][0]["name"]
    original = mock_s3.get_bytes(key)
    altered = original.replace(b"shopper-ann", b"shopper-eve")  # another shopper's rows, same byte count
    assert altered != original and len(altered) == len(original)
    mock_s3.put_bytes(key, altered)

    with pytest.raises(InvalidObjectError) as refused:
        read_recommendations(mock_s3, DATASET)
    assert str(refused.value) == (
        f"{mock_s3.uri(key)} does not match the SHA-256 its manifest records (altered after publish); not served"
    )
    mock_s3.put_bytes(key, original)
    assert set(read_recommendations(mock_s3, DATASET)[schema.USER_ID]) == {"shopper-ann", "shopper-bob"}


@pytest.mark.parametrize("pointer", [{}, [], {"dt": 20260401}, {"dt": "yesterday"}, {"dt": DS, "tables": ["x"]}])
def test_a_pointer_of_the_wrong_shape_is_refused_naming_it(mock_s3: ObjectStore, pointer: object) -> None:
    _published(mock_s3, ["shopper-ann"])
    key = layout.latest_pointer_key(TABLE, DATASET)
    mock_s3.put_json(key, pointer)
    with pytest.raises(InvalidObjectError, match=f"^{mock_s3.uri(key)} is not an export pointer: "):
        read_manifest(mock_s3, DATASET)
    assert read_manifest(mock_s3, DATASET, DS)["dt"] == DS  # by date, the export is still readable


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda m: [], "a JSON list, not an object"),
        (lambda m: {}, "its dt is None"),
        (lambda m: {**m, "dt": "2026-04-02"}, "its dt is '2026-04-02'"),
        (lambda m: {**m, "table": "similar_items"}, "its table is 'similar_items'"),
        (lambda m: {**m, "rows": "12"}, "'rows' is '12', not a row count"),
        (lambda m: {**m, "files": {"name": "x"}}, "'files' is not a list"),
        (lambda m: {**m, "files": [{**m["files"][0], "name": "../../evil.parquet"}]}, "has no plain file name"),
        (lambda m: {**m, "files": [{k: v for k, v in m["files"][0].items() if k != "sha256"}]}, "no SHA-256"),
    ],
)
def test_a_manifest_of_the_wrong_shape_is_refused_naming_it(mock_s3: ObjectStore, change, complaint: str) -> None:
    _published(mock_s3, ["shopper-ann"])
    key = layout.export_prefix(TABLE, DATASET, DS) + MANIFEST
    stored = {k: v for k, v in mock_s3.get_json(key).items()}
    mock_s3.put_json(key, change(stored))
    with pytest.raises(InvalidObjectError) as refused:
        read_recommendations(mock_s3, DATASET)
    assert str(refused.value).startswith(f"{mock_s3.uri(key)} is not a manifest of {TABLE} on {DS}: ")
    assert complaint in str(refused.value)


def test_the_latest_of_a_table_the_export_set_lacks_is_not_found(mock_s3: ObjectStore) -> None:
    _published(mock_s3, ["shopper-ann"])  # a user_topk alone: the set's pointer names no similar_items
    with pytest.raises(ExportNotFoundError, match=f"the latest export of dataset 'shop' \\({DS}\\) has no similar"):
        read_manifest(mock_s3, DATASET, table="similar_items")
