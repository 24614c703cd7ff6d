"""How the client talks to the MLflow tracking server: bounded retries and timeouts, and the
failures a user can act on as the library's errors.

MLflow reads its HTTP settings from the environment at every request
(``mlflow.utils.rest_utils.http_request``: ``MLFLOW_HTTP_REQUEST_MAX_RETRIES``, exponential backoff
of 2 s x 2^n with up to 1 s jitter, and ``MLFLOW_HTTP_REQUEST_TIMEOUT`` seconds per request, for
both connecting and reading). Its defaults, 7 retries and 120 s, keep a client waiting about four
minutes on a server that refuses connections. :func:`apply_http_settings` sets them from
``registry.max_retries`` and ``registry.request_timeout`` when a run starts, so the wait is bounded
and configured where every other setting is.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from typing import TYPE_CHECKING

from recsys_lib.errors import ConfigError, ModelError, RegistryAccessError, RegistryUnavailableError

if TYPE_CHECKING:
    from recsys_lib.config import RegistryConfig

MAX_RETRIES_VAR = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
TIMEOUT_VAR = "MLFLOW_HTTP_REQUEST_TIMEOUT"
DEFAULT_MAX_RETRIES = 3
"""Retries after the first try: the backoff sleeps 0, 4 and 8 s (plus up to 1 s jitter each), 12-15 s in all."""
DEFAULT_REQUEST_TIMEOUT = 30
"""Seconds to connect, and then to wait for the answer, per request."""
_TRACKING_URI = "MLFLOW_TRACKING_URI"
_applied: dict[str, str] = {}  # what apply_http_settings last wrote, to tell it from a user's own value


def apply_http_settings(registry: RegistryConfig) -> dict[str, int]:
    """Set MLflow's HTTP retries and timeout for this process; returns the values in force.

    A value set in the config wins; a field left at None keeps a value the user put in the
    environment (MLflow's documented variable), else takes this module's default. MLflow reads the
    variables at every request, so they hold from the next call on. A failed call then raises after
    at most about ``(max_retries + 1) x request_timeout`` seconds plus the backoff.
    """
    wanted = {
        MAX_RETRIES_VAR: (registry.max_retries, DEFAULT_MAX_RETRIES),
        TIMEOUT_VAR: (registry.request_timeout, DEFAULT_REQUEST_TIMEOUT),
    }
    in_force: dict[str, int] = {}
    for var, (configured, default) in wanted.items():
        current = os.environ.get(var)
        if configured is None and current is not None and current != _applied.get(var):  # the user's own
            if not current.strip().isdigit():
                raise ConfigError(f"{var} must be a whole number, got {current!r}")
            in_force[var] = int(current)
            continue
        value = default if configured is None else configured
        os.environ[var] = _applied[var] = str(value)
        in_force[var] = value
    return in_force


def tracking_uri() -> str:
    """The tracking server the client talks to (``MLFLOW_TRACKING_URI``, or MLflow's default)."""
    import mlflow

    return str(mlflow.get_tracking_uri())


def registry_error(exc: BaseException, action: str) -> ModelError | None:
    """``exc`` (raised by MLflow while ``action``, e.g. "registering the model") as
    RegistryUnavailableError (the server cannot be reached or does not answer in time) or
    RegistryAccessError (it refuses the credentials); None when it is neither, or when ``exc`` did
    not come out of MLflow."""
    if not _raised_by_mlflow(exc):
        return None
    if _refused_credentials(exc):
        return RegistryAccessError(
            f"the MLflow tracking server {tracking_uri()} refused the credentials while {action} ({_first_line(exc)}); "
            "check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)"
        )
    text = _lost_connection(exc)
    if text is None:
        return None
    errno = re.search(r"\[Errno -?\d+\] [^'\")]+", text)
    cause = errno.group(0) if errno else ("timed out" if "timeout" in text.lower() else _first_line(text)[:200])
    retries, timeout = os.environ.get(MAX_RETRIES_VAR, "7"), os.environ.get(TIMEOUT_VAR, "120")
    return RegistryUnavailableError(
        f"MLflow tracking server {tracking_uri()} is unreachable while {action} ({cause}; "
        f"registry.max_retries={retries}, registry.request_timeout={timeout} s); check {_TRACKING_URI}"
    )


def _raised_by_mlflow(exc: BaseException) -> bool:
    """Whether ``exc`` or an error in its chain is MLflow's, or was raised inside MLflow's code."""
    module = sys.modules.get("mlflow")
    root = os.path.dirname(module.__file__) if module is not None and module.__file__ else None
    if root is None:
        return False
    seen: BaseException | None = exc
    while seen is not None:
        if type(seen).__module__.split(".")[0] == "mlflow":
            return True
        if any(frame.filename.startswith(root + os.sep) for frame in traceback.extract_tb(seen.__traceback__)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _lost_connection(exc: BaseException) -> str | None:
    """The message of the first error in ``exc``'s chain saying the server could not be reached
    or did not answer in time (MLflow wraps requests' errors in an MlflowException's text)."""
    seen: BaseException | None = exc
    while seen is not None:
        text = str(seen)
        if isinstance(seen, ConnectionError | TimeoutError) or _is_requests_failure(seen):
            return text
        if "API request to" in text and ("failed with exception" in text or "failed with timeout" in text):
            return text
        seen = seen.__cause__ or seen.__context__
    return None


def _is_requests_failure(exc: BaseException) -> bool:
    try:
        import requests
    except ImportError:  # pragma: no cover - MLflow depends on requests
        return False
    return isinstance(exc, requests.ConnectionError | requests.Timeout)


def _refused_credentials(exc: BaseException) -> bool:
    code = str(getattr(exc, "error_code", ""))
    return code in ("UNAUTHENTICATED", "PERMISSION_DENIED") or bool(
        re.search(r"failed with error code (401|403)\b", str(exc))
    )


def _first_line(exc: BaseException | str) -> str:
    lines = str(exc).strip().splitlines()
    return " ".join(lines[0].split()) if lines else type(exc).__name__
