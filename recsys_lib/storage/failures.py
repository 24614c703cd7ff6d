"""What a failed S3 call means for the user: botocore's exceptions as the library's error types.

Each error names the endpoint, what was being done, the cause and the one setting to check, on one
line: an endpoint that cannot be reached (after ``storage.max_attempts`` attempts, each bounded by
``storage.connect_timeout`` and ``storage.read_timeout``), credentials that are missing or refused,
a bucket that does not exist. Anything else stays a plain StorageError with botocore's message.
"""

from __future__ import annotations

from recsys_lib.errors import (
    BucketNotFoundError,
    StorageAccessError,
    StorageError,
    StorageUnavailableError,
)

_CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "AuthorizationHeaderMalformed",
        "InvalidClientTokenId",
    }
)
_DENIED_CODES = frozenset({"AccessDenied", "403", "AllAccessDisabled", "Forbidden"})
_BUSY_CODES = frozenset({"500", "502", "503", "504", "InternalError", "ServiceUnavailable", "SlowDown"})
_CREDENTIALS = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
_TIME_LIMITS = "storage.connect_timeout, storage.read_timeout and storage.max_attempts bound the wait"


def error_code(exc: BaseException) -> str:
    """The S3 error code of a botocore ``ClientError`` (``NoSuchKey``, ``403``, ...); "" otherwise."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


def s3_error(exc: Exception, *, endpoint: str, bucket: str, doing: str, attempts: int | None = None) -> StorageError:
    """``exc`` (raised by a boto3 S3 call while ``doing``, e.g. "reading s3://b/k") as the
    library's error: StorageUnavailableError, StorageAccessError, BucketNotFoundError, or a plain
    StorageError when it is none of those."""
    from botocore.exceptions import (
        ClientError,
        CredentialRetrievalError,
        HTTPClientError,
        NoCredentialsError,
        PartialCredentialsError,
    )
    from botocore.exceptions import ConnectionError as BotoConnectionError

    tries = f" after {attempts} attempt(s)" if attempts else ""
    cause = " ".join(str(exc).split())  # one line
    if isinstance(exc, BotoConnectionError | HTTPClientError):  # refused, timed out, dropped, TLS, proxy
        return StorageUnavailableError(
            f"cannot reach the S3 endpoint {endpoint}{tries} while {doing}: {cause}; check AWS_ENDPOINT_URL_S3 "
            f"({_TIME_LIMITS})"
        )
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
        return StorageAccessError(f"no usable S3 credentials for {endpoint} while {doing}: {cause}; set {_CREDENTIALS}")
    if not isinstance(exc, ClientError):
        return StorageError(f"S3 call to {endpoint} failed while {doing}: {cause}")
    code = error_code(exc)
    if code in _CREDENTIAL_CODES:
        return StorageAccessError(
            f"the S3 endpoint {endpoint} refused the credentials while {doing}: {cause}; check {_CREDENTIALS}"
        )
    if code in _DENIED_CODES:
        return StorageAccessError(
            f"the S3 endpoint {endpoint} denied access while {doing} ({code}); check that AWS_ACCESS_KEY_ID may "
            f"use bucket {bucket!r} (storage.bucket, storage.prefix)"
        )
    if code == "NoSuchBucket":
        return BucketNotFoundError(
            f"bucket {bucket!r} does not exist at the S3 endpoint {endpoint} (while {doing}); check storage.bucket "
            "(RECSYS_BUCKET) and AWS_ENDPOINT_URL_S3"
        )
    if code in _BUSY_CODES:
        return StorageUnavailableError(
            f"the S3 endpoint {endpoint} kept failing{tries} while {doing}: {cause}; check AWS_ENDPOINT_URL_S3 "
            f"({_TIME_LIMITS})"
        )
    return StorageError(f"S3 call to {endpoint} failed while {doing}: {cause}")
