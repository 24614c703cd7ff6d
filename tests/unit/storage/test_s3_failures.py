"""Failed S3 calls come out as errors a user can act on: the endpoint, the cause and the setting to
check, for an endpoint that cannot be reached (in bounded time), missing or refused credentials and
a missing bucket. (tests/integration/test_endpoint_errors.py shows the same against real servers.)"""

from __future__ import annotations

import socket

import pytest
from botocore.exceptions import ClientError

from recsys_lib.errors import (
    BucketNotFoundError,
    ConfigError,
    StorageAccessError,
    StorageError,
    StorageUnavailableError,
)
from recsys_lib.storage import ObjectStore
from recsys_lib.storage.failures import s3_error


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


def test_a_missing_bucket_names_the_bucket_and_storage_bucket(mock_s3: ObjectStore) -> None:
    store = ObjectStore("no-such-bucket")
    for call in (
        lambda: store.get_bytes("k"),
        lambda: store.list_objects("exports/"),
        lambda: store.put_bytes("k", b""),
    ):
        with pytest.raises(BucketNotFoundError) as missing:
            call()
        assert str(missing.value).startswith("bucket 'no-such-bucket' does not exist at the S3 endpoint")
        assert str(missing.value).endswith("check storage.bucket (RECSYS_BUCKET) and AWS_ENDPOINT_URL_S3")


def test_refused_credentials_name_the_credential_variables(mock_s3: ObjectStore) -> None:
    from moto.core import set_initial_no_auth_action_count

    @set_initial_no_auth_action_count(0)  # moto checks keys from here on: "unit-test" is no IAM user's
    def read() -> None:
        mock_s3.get_bytes("anything")

    with pytest.raises(StorageAccessError) as refused:
        read()
    assert "refused the credentials while reading s3://unit-bucket/tenant-a/anything" in str(refused.value)
    assert "InvalidAccessKeyId" in str(refused.value)
    assert str(refused.value).endswith("check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)")


def test_no_credentials_at_all_say_which_to_set(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{_closed_port()}")
    import boto3

    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # an earlier test's session caches its credentials
    with pytest.raises(StorageAccessError, match=r"no usable S3 credentials .* set AWS_ACCESS_KEY_ID"):
        ObjectStore("some-bucket").get_bytes("k")


def test_an_unreachable_endpoint_fails_within_the_configured_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "unit-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "unit-test")
    store = ObjectStore("some-bucket", client_options={"max_attempts": 2, "connect_timeout": 1, "read_timeout": 1})
    attempts: list[str] = []
    store.client.meta.events.register("before-send.s3.*", lambda request, **_: attempts.append(request.url))
    assert (store.client.meta.config.connect_timeout, store.client.meta.config.read_timeout) == (1, 1)
    with pytest.raises(StorageUnavailableError) as unreachable:
        store.list_objects("exports/")
    assert len(attempts) == 2  # the configured attempts, each bounded by the timeouts above: then it stops
    message = str(unreachable.value)
    assert message.startswith(f"cannot reach the S3 endpoint {endpoint} after 2 attempt(s) while listing s3://some-")
    assert "check AWS_ENDPOINT_URL_S3" in message and "\n" not in message


def test_an_endpoint_that_is_not_a_url_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "localhost-without-scheme")
    with pytest.raises(ConfigError, match="AWS_ENDPOINT_URL_S3: Invalid endpoint: localhost-without-scheme"):
        ObjectStore("some-bucket").exists("k")


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("SignatureDoesNotMatch", StorageAccessError),
        ("AccessDenied", StorageAccessError),
        ("403", StorageAccessError),
        ("NoSuchBucket", BucketNotFoundError),
        ("503", StorageUnavailableError),
        ("SlowDown", StorageUnavailableError),
        ("InvalidObjectState", StorageError),
    ],
)
def test_s3_error_codes_map_to_what_the_user_should_check(code: str, kind: type) -> None:
    exc = ClientError({"Error": {"Code": code, "Message": "m"}}, "GetObject")
    error = s3_error(exc, endpoint="http://s3.local", bucket="b", doing="reading s3://b/k", attempts=3)
    assert type(error) is kind
    assert "http://s3.local" in str(error) and (kind is StorageError or kind.setting in str(error))
