"""The library's error hierarchy: every error a user can act on derives from RecsysError."""

from __future__ import annotations

from typing import Any


class RecsysError(Exception):
    """Base class for errors raised by recsys_lib; the message says what to fix."""


class ConfigError(RecsysError, ValueError):
    """A configuration value or parameter is invalid; the message names the key."""


class DataValidationError(RecsysError, ValueError):
    """Data broke one or more validation rules.

    ``failures`` holds one dict per failed rule (rule, column, unexpected_count, examples) so
    callers can render or store them; ``report_uri`` points at the stored JSON report, if any.
    """

    def __init__(self, message: str, failures: list[dict[str, Any]] | None = None, report_uri: str | None = None):
        super().__init__(message)
        self.failures = failures or []
        self.report_uri = report_uri


class SourceError(DataValidationError):
    """Raw input could not be read or converted to the canonical schema (a missing, empty,
    corrupt or undecodable file, a value that does not fit its column): bad data, like any other
    validation failure, so it is never retried."""


class StorageError(RecsysError):
    """An object-store operation failed after retries, or a key is outside the allowed prefix."""


class EndpointError(RecsysError):
    """A server the platform talks to (S3, MLflow) cannot be used as configured.

    ``setting`` names what the user should check (an environment variable or a config key); the
    message names the endpoint, that setting and the cause on one line, so a shell user can act on it.
    """

    setting = ""


class StorageUnavailableError(StorageError, EndpointError):
    """The S3 endpoint could not be reached or did not answer in time, after the client's retries
    (``storage.max_attempts``, ``storage.connect_timeout``, ``storage.read_timeout``): transient."""

    setting = "AWS_ENDPOINT_URL_S3"


class StorageAccessError(StorageError, EndpointError):
    """S3 refused the request's credentials (none found, an unknown key, a wrong secret, an expired
    token) or denied the access: not transient, retrying does not help."""

    setting = "AWS_ACCESS_KEY_ID"


class BucketNotFoundError(StorageError, EndpointError):
    """The configured bucket does not exist at the S3 endpoint."""

    setting = "storage.bucket"


class InvalidObjectError(StorageError, ValueError):
    """A stored object is not what its writer recorded or its reader expects: a part whose checksum
    differs from its manifest, a pointer, manifest or plan that is JSON of the wrong shape. The
    message names the object."""


class ObjectNotFoundError(StorageError, KeyError):
    """The requested object does not exist."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else "object not found"


class PreconditionFailedError(StorageError):
    """A conditional write lost a race (the object changed since it was read)."""


class ModelError(RecsysError):
    """A model could not be trained, saved, loaded or found in the registry."""


class RegistryUnavailableError(ModelError, EndpointError):
    """The MLflow tracking server could not be reached (after MLflow's own HTTP retries,
    ``registry.max_retries`` and ``registry.request_timeout``): transient, so Airflow retries the task."""

    setting = "MLFLOW_TRACKING_URI"


class RegistryAccessError(ModelError, EndpointError):
    """The MLflow tracking server refused the client's credentials (HTTP 401 or 403)."""

    setting = "MLFLOW_TRACKING_USERNAME"


class ExportNotFoundError(RecsysError, LookupError):
    """No published export exists for the requested table, dataset or date."""
