"""A small interface over one S3 bucket and prefix (boto3), used by every stage.

Keys passed to :class:`ObjectStore` are relative to its prefix; the store refuses keys that would
escape it (``..``, absolute keys, URIs of another bucket). Endpoint and credentials come from the
environment (``AWS_ENDPOINT_URL_S3``, ``AWS_ACCESS_KEY_ID``, ...), never from config or code.

Every failed call raises a StorageError (:mod:`recsys_lib.storage.failures`): an unreachable
endpoint, refused credentials or a missing bucket as their own subclasses, naming the setting to check.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recsys_lib.errors import ConfigError, ObjectNotFoundError, PreconditionFailedError, StorageError
from recsys_lib.storage.failures import error_code, s3_error

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client  # pragma: no cover

    from recsys_lib.config import StorageConfig

_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_LOST_RACE = {"PreconditionFailed", "412", "ConditionalRequestConflict"}


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object: its store-relative key, size in bytes and ETag (quoted, as S3 returns it)."""

    key: str
    size: int
    etag: str


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into ``(bucket, key)``; raise StorageError for anything else."""
    if not uri.startswith("s3://"):
        raise StorageError(f"not an S3 URI: {uri!r} (expected s3://bucket/key)")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise StorageError(f"S3 URI without a bucket: {uri!r}")
    return bucket, key


def make_s3_client(*, read_timeout: float = 60.0, max_attempts: int = 6, connect_timeout: float = 5.0) -> S3Client:
    """A boto3 S3 client with bounded timeouts and standard retries (throttling, 5xx, resets,
    timeouts); the values come from ``storage.*`` of the config. Endpoint and credentials come from
    the AWS environment."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"total_max_attempts": max_attempts, "mode": "standard"},  # attempts in all, the first included
        connect_timeout=min(connect_timeout, read_timeout),
        read_timeout=read_timeout,
        s3={"addressing_style": "path"},
    )
    return boto3.client("s3", config=config)


class ObjectStore:
    """Objects under ``s3://<bucket>/<prefix>/``. Thread-safe for concurrent reads and writes."""

    def __init__(self, bucket: str, prefix: str = "", client: Any = None, client_options: dict[str, Any] | None = None):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = client
        self._client_options = client_options or {}

    @classmethod
    def from_config(cls, config: StorageConfig) -> ObjectStore:
        """A store over ``storage.bucket`` and ``storage.prefix`` whose client (made on first use)
        has the configured timeouts and retry attempts."""
        return cls(
            config.bucket,
            config.prefix,
            client_options={
                "read_timeout": config.read_timeout,
                "max_attempts": config.max_attempts,
                "connect_timeout": config.connect_timeout,
            },
        )

    @property
    def client(self) -> Any:
        """The boto3 S3 client, made on first use (endpoint and credentials from the AWS
        environment); ConfigError when ``AWS_ENDPOINT_URL_S3`` is not a usable endpoint."""
        if self._client is None:
            try:
                self._client = make_s3_client(**self._client_options)
            except ValueError as exc:  # botocore: "Invalid endpoint: ..."
                raise ConfigError(f"cannot use the S3 endpoint from AWS_ENDPOINT_URL_S3: {exc}") from exc
        return self._client

    @property
    def endpoint(self) -> str:
        """The S3 endpoint URL the client talks to (``AWS_ENDPOINT_URL_S3``, else AWS's own)."""
        return str(getattr(getattr(self.client, "meta", None), "endpoint_url", "the S3 endpoint"))

    def _failed(self, exc: Exception, doing: str) -> StorageError:
        """``exc`` from a boto3 call made while ``doing`` as the library's StorageError (see failures)."""
        retries = getattr(getattr(getattr(self.client, "meta", None), "config", None), "retries", None) or {}
        attempts = retries.get("total_max_attempts") if isinstance(retries, dict) else None  # botocore's, all tries
        return s3_error(exc, endpoint=self.endpoint, bucket=self.bucket, doing=doing, attempts=attempts)

    # --- keys and URIs ------------------------------------------------------------------------
    def full_key(self, key: str) -> str:
        """Bucket key for a store-relative key; refuses keys that could leave the prefix."""
        if not key or key.startswith("/") or "\\" in key or any(p in ("..", ".") for p in key.split("/")):
            raise StorageError(f"invalid object key {key!r}: keys are relative and may not contain '..'")
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        """``s3://<bucket>/<prefix>/<key>``; StorageError for a key that could leave the prefix."""
        return f"s3://{self.bucket}/{self.full_key(key)}"

    def key_from_uri(self, uri: str) -> str:
        """Store-relative key of ``uri``; raise StorageError if it is outside this bucket and prefix."""
        bucket, full = parse_s3_uri(uri)
        root = f"{self.prefix}/" if self.prefix else ""
        if bucket != self.bucket or not full.startswith(root):
            raise StorageError(f"{uri} is outside the configured location s3://{self.bucket}/{root}")
        key = full[len(root) :]
        self.full_key(key)  # validates
        return key

    # --- bytes ------------------------------------------------------------------------------------
    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (local endpoints and first deploys)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if error_code(exc) not in _NOT_FOUND | {"NoSuchBucket"}:
                raise self._failed(exc, f"checking bucket {self.bucket!r}") from exc
        except BotoCoreError as exc:
            raise self._failed(exc, f"checking bucket {self.bucket!r}") from exc
        try:
            self.client.create_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise self._failed(exc, f"creating bucket {self.bucket!r}") from exc

    def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str:
        """Write one object atomically and return its ETag.

        ``if_match`` (an ETag) or ``if_none_match=True`` make the write conditional; losing the
        race raises PreconditionFailedError and leaves the object as it was.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        extra: dict[str, str] = {}
        if if_match is not None:
            extra["IfMatch"] = if_match
        if if_none_match:
            extra["IfNoneMatch"] = "*"
        try:
            resp = self.client.put_object(
                Bucket=self.bucket, Key=self.full_key(key), Body=data, ContentType=content_type, **extra
            )
        except (BotoCoreError, ClientError) as exc:
            if (code := error_code(exc)) in _LOST_RACE:
                raise PreconditionFailedError(f"conditional write to {self.uri(key)} lost a race ({code})") from exc
            raise self._failed(exc, f"writing {self.uri(key)}") from exc
        return str(resp["ETag"])

    def get_bytes(self, key: str) -> bytes:
        """An object's whole content; ObjectNotFoundError when it does not exist, StorageError
        naming its URI otherwise."""
        return self._get(key)[0]

    def _get(self, key: str) -> tuple[bytes, str]:
        """An object's bytes and ETag; ObjectNotFoundError or StorageError naming its URI."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.full_key(key))
            return bytes(response["Body"].read()), str(response["ETag"])
        except (BotoCoreError, ClientError) as exc:
            if error_code(exc) in _NOT_FOUND:
                raise ObjectNotFoundError(f"{self.uri(key)} does not exist") from exc
            raise self._failed(exc, f"reading {self.uri(key)}") from exc

    def head(self, key: str) -> ObjectInfo | None:
        """Size and ETag of an object, or None when it does not exist (HEAD has no error body, so a
        missing bucket looks the same here; the next read or listing names it)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            resp = self.client.head_object(Bucket=self.bucket, Key=self.full_key(key))
        except (BotoCoreError, ClientError) as exc:
            if error_code(exc) in _NOT_FOUND:
                return None
            raise self._failed(exc, f"checking {self.uri(key)}") from exc
        return ObjectInfo(key=key, size=int(resp["ContentLength"]), etag=str(resp["ETag"]))

    def exists(self, key: str) -> bool:
        """Whether the object exists (one HEAD request); StorageError for any failure but not-found."""
        return self.head(key) is not None

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        """Every object whose store-relative key starts with ``prefix`` ("" lists the whole store),
        sorted by key."""
        if prefix:
            full_prefix = self.full_key(prefix.rstrip("/")) + ("/" if prefix.endswith("/") else "")
        else:
            full_prefix = f"{self.prefix}/" if self.prefix else ""
        root_len = len(self.prefix) + 1 if self.prefix else 0
        out: list[ObjectInfo] = []
        for page in self._pages(full_prefix):
            for obj in page.get("Contents", []):
                out.append(ObjectInfo(key=obj["Key"][root_len:], size=int(obj["Size"]), etag=str(obj["ETag"])))
        return sorted(out, key=lambda o: o.key)

    def _pages(self, full_prefix: str, **extra: str) -> list[dict[str, Any]]:
        """Every page of a ListObjectsV2 of ``full_prefix`` (a bucket key prefix)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            paginator = self.client.get_paginator("list_objects_v2")
            return list(paginator.paginate(Bucket=self.bucket, Prefix=full_prefix, **extra))
        except (BotoCoreError, ClientError) as exc:
            raise self._failed(exc, f"listing s3://{self.bucket}/{full_prefix}") from exc

    def list_prefixes(self, prefix: str) -> list[str]:
        """The store-relative "folders" directly under ``prefix`` (ending in "/"), sorted: one
        listing of names, however many objects each folder holds."""
        full_prefix = self.full_key(prefix.rstrip("/")) + "/"
        root_len = len(self.prefix) + 1 if self.prefix else 0
        out: list[str] = []
        for page in self._pages(full_prefix, Delimiter="/"):
            out += [p["Prefix"][root_len:] for p in page.get("CommonPrefixes", [])]
        return sorted(out)

    def delete(self, keys: list[str]) -> None:
        """Delete ``keys`` in batches of 1,000 (S3's limit per request); keys that do not exist are
        no error. A failed request raises StorageError naming the first key of its batch (earlier
        batches stay deleted)."""
        from botocore.exceptions import BotoCoreError, ClientError

        for start in range(0, len(keys), 1000):
            batch = [{"Key": self.full_key(k)} for k in keys[start : start + 1000]]
            if not batch:
                continue
            try:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            except (BotoCoreError, ClientError) as exc:
                raise self._failed(exc, f"deleting {len(batch)} object(s) such as {self.uri(keys[start])}") from exc

    def copy(self, src_key: str, dst_key: str) -> None:
        """Server-side copy inside the bucket."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.copy_object(
                Bucket=self.bucket,
                Key=self.full_key(dst_key),
                CopySource={"Bucket": self.bucket, "Key": self.full_key(src_key)},
            )
        except (BotoCoreError, ClientError) as exc:
            if error_code(exc) in _NOT_FOUND:
                raise ObjectNotFoundError(f"{self.uri(src_key)} does not exist") from exc
            raise self._failed(exc, f"copying {self.uri(src_key)} to {self.uri(dst_key)}") from exc

    def put_dir(self, local_dir: str | Path, prefix: str) -> list[str]:
        """Upload every file below ``local_dir`` to ``prefix`` (relative paths kept, content types
        guessed from the names so an HTML site can be served from the bucket); return keys."""
        import mimetypes

        root = Path(local_dir)
        keys = []
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            key = prefix + path.relative_to(root).as_posix()
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            self.put_bytes(key, path.read_bytes(), content_type=kind)
            keys.append(key)
        return keys

    def get_dir(self, prefix: str, local_dir: str | Path) -> Path:
        """Download every object below ``prefix`` into ``local_dir``; raise if there is none.

        A key whose relative path would leave ``local_dir`` (``../``, an absolute path) raises
        StorageError before anything is written for it.
        """
        root = Path(local_dir).resolve()
        objects = self.list_objects(prefix)
        if not objects:
            raise ObjectNotFoundError(f"nothing stored under {self.uri(prefix)}")
        for obj in objects:
            target = (root / obj.key[len(prefix) :]).resolve()
            if not target.is_relative_to(root) or target == root:
                raise StorageError(f"refusing to download {obj.key!r} from {self.uri(prefix)}: its path leaves {root}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.get_bytes(obj.key))
        return root

    # --- typed helpers ----------------------------------------------------------------------------
    def put_json(self, key: str, obj: Any, **conditions: Any) -> str:
        """Write ``obj`` as indented JSON with sorted keys (values JSON cannot hold as ``str()``)
        and return the ETag; ``conditions`` (``if_match``, ``if_none_match``) as for
        :meth:`put_bytes`."""
        data = json.dumps(obj, indent=2, sort_keys=True, default=str).encode()
        return self.put_bytes(key, data, content_type="application/json", **conditions)

    def get_json(self, key: str) -> Any:
        """An object parsed as JSON, of any shape (callers check it); StorageError naming it when it is not JSON."""
        try:
            return json.loads(self.get_bytes(key))
        except json.JSONDecodeError as exc:
            raise StorageError(f"{self.uri(key)} is not valid JSON: {exc}") from exc

    def put_frame(self, key: str, df: pd.DataFrame) -> str:
        """Write ``df`` as one Parquet object (no index) and return its ETag."""
        return self.put_bytes(key, frame_to_parquet(df), content_type="application/vnd.apache.parquet")

    def get_frame(self, key: str, columns: list[str] | None = None) -> pd.DataFrame:
        """A Parquet object as a DataFrame, only ``columns`` when given; ObjectNotFoundError when it does not exist."""
        return parquet_to_frame(self.get_bytes(key), columns=columns)

    def get_frame_sample(self, key: str, rows: int) -> tuple[pd.DataFrame, str]:
        """The first ``rows`` rows of a Parquet object (only its first row group is decoded) and the
        object's ETag."""
        data, etag = self._get(key)
        first = next(pq.ParquetFile(pa.BufferReader(data)).iter_batches(batch_size=rows), None)
        return (first.to_pandas() if first is not None else parquet_to_frame(data)), etag


def frame_to_parquet(df: pd.DataFrame) -> bytes:
    """``df`` as zstd-compressed Parquet bytes, without the index."""
    buf = io.BytesIO()
    df.to_parquet(buf, index=False, engine="pyarrow", compression="zstd")
    return buf.getvalue()


def table_to_parquet(table: pa.Table) -> bytes:
    """An Arrow table as Parquet bytes (zstd), row groups of at most a million rows."""
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", row_group_size=1_000_000)
    return buf.getvalue()


def parquet_to_frame(data: bytes, columns: list[str] | None = None) -> pd.DataFrame:
    """Parquet bytes as a DataFrame (pyarrow), only ``columns`` when given."""
    return pd.read_parquet(io.BytesIO(data), columns=columns, engine="pyarrow")
