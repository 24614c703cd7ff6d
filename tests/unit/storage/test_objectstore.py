from __future__ import annotations

import pandas as pd
import pytest

from recsys_lib.errors import ObjectNotFoundError, PreconditionFailedError, StorageError
from recsys_lib.storage import ObjectStore


def test_bytes_json_and_frames_round_trip(mock_s3: ObjectStore) -> None:
    mock_s3.put_bytes("a/b.bin", b"xyz")
    mock_s3.put_json("a/c.json", {"k": 1})
    df = pd.DataFrame({"user_id": ["u1", "u2"], "score": [0.5, 0.25]})
    mock_s3.put_frame("a/d.parquet", df)
    assert mock_s3.get_bytes("a/b.bin") == b"xyz"
    assert mock_s3.get_json("a/c.json") == {"k": 1}
    pd.testing.assert_frame_equal(mock_s3.get_frame("a/d.parquet"), df)
    assert [o.key for o in mock_s3.list_objects("a/")] == ["a/b.bin", "a/c.json", "a/d.parquet"]
    assert mock_s3.uri("a/b.bin") == "s3://unit-bucket/tenant-a/a/b.bin"


def test_missing_objects_raise_not_found(mock_s3: ObjectStore) -> None:
    with pytest.raises(ObjectNotFoundError, match="does not exist"):
        mock_s3.get_bytes("nope")
    assert mock_s3.head("nope") is None


@pytest.mark.parametrize("key", ["../escape", "/abs", "a/../../b", "a/./b", ""])
def test_keys_cannot_escape_the_prefix(mock_s3: ObjectStore, key: str) -> None:
    with pytest.raises(StorageError, match="invalid object key"):
        mock_s3.put_bytes(key, b"x")


@pytest.mark.parametrize(
    "uri", ["s3://other-bucket/tenant-a/x", "s3://unit-bucket/tenant-b/x", "s3://unit-bucket/tenant-a/../x", "/tmp/x"]
)
def test_uris_outside_bucket_and_prefix_are_refused(mock_s3: ObjectStore, uri: str) -> None:
    with pytest.raises(StorageError):
        mock_s3.key_from_uri(uri)


@pytest.mark.security
def test_downloading_a_prefix_never_writes_outside_the_target_directory(mock_s3: ObjectStore, tmp_path) -> None:
    """A key planted in the bucket by someone else (``models/run/../../evil``) cannot make
    get_dir write outside its directory."""
    mock_s3.put_bytes("models/run/weights.safetensors", b"w")
    mock_s3.client.put_object(Bucket=mock_s3.bucket, Key="tenant-a/models/run/../../../evil.sh", Body=b"rm -rf")
    target = tmp_path / "bundle"
    with pytest.raises(
        StorageError, match=r"refusing to download .*evil\.sh. from s3://unit-bucket/.*: its path leaves"
    ):
        mock_s3.get_dir("models/run/", target)
    assert not list(tmp_path.rglob("evil.sh"))


def test_the_whole_store_can_be_listed(mock_s3: ObjectStore) -> None:
    mock_s3.put_bytes("a/x", b"1")
    mock_s3.client.put_object(Bucket=mock_s3.bucket, Key="tenant-b/y", Body=b"2")  # another prefix: not ours
    assert [o.key for o in mock_s3.list_objects("")] == ["a/x"]


def test_conditional_writes_detect_races(mock_s3: ObjectStore) -> None:
    etag = mock_s3.put_bytes("ptr", b"1", if_none_match=True)
    with pytest.raises(PreconditionFailedError):
        mock_s3.put_bytes("ptr", b"2", if_none_match=True)
    new_etag = mock_s3.put_bytes("ptr", b"2", if_match=etag)
    with pytest.raises(PreconditionFailedError):
        mock_s3.put_bytes("ptr", b"3", if_match=etag)
    assert mock_s3.get_bytes("ptr") == b"2" and new_etag != etag


def test_directories_round_trip(mock_s3: ObjectStore, tmp_path) -> None:
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "a.txt").write_text("a")
    (tmp_path / "src" / "sub" / "b.txt").write_text("b")
    mock_s3.put_dir(tmp_path / "src", "bundle/")
    out = mock_s3.get_dir("bundle/", tmp_path / "dst")
    assert (out / "sub" / "b.txt").read_text() == "b" and (out / "a.txt").read_text() == "a"


def test_folders_directly_under_a_prefix_are_listed_once_each(mock_s3: ObjectStore) -> None:
    from recsys_lib.storage import layout

    for day in ("2026-01-02", "2026-01-01"):
        mock_s3.put_bytes(layout.validation_report_key("shop", day), b"{}")
        mock_s3.put_bytes(layout.data_docs_prefix("shop", day) + "static/a.css", b"x")
    mock_s3.put_bytes(layout.validation_report_key("other", "2026-01-03"), b"{}")
    folders = mock_s3.list_prefixes(layout.validation_root("shop"))
    assert folders == ["validation/dataset=shop/dt=2026-01-01/", "validation/dataset=shop/dt=2026-01-02/"]
    assert layout.partition_dates(folders) == ["2026-01-02", "2026-01-01"]
