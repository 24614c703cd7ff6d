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
