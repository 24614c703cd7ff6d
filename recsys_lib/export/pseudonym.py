"""Pseudonymised user ids: a keyed hash (HMAC-SHA256) in place of the shop's user id.

Downstream readers can join exports on the pseudonym (it is stable for a key) but cannot recover
the id without the key. The key never lives in code or config files: it comes from the environment
(``RECSYS_PSEUDONYM_KEY``) or, in Airflow, from the connection ``recsys_pseudonym`` (its password),
which the DAG task reads and passes in.
"""

from __future__ import annotations

import hashlib
import hmac

import numpy as np

from recsys_lib.config import PSEUDONYM_KEY_VAR, environment
from recsys_lib.errors import ConfigError

KEY_ENV = PSEUDONYM_KEY_VAR
CONNECTION_ID = "recsys_pseudonym"
_MIN_KEY_BYTES = 16


def pseudonym_key(explicit: str | bytes | None = None) -> bytes:
    """The key to hash with: ``explicit`` if given, else ``$RECSYS_PSEUDONYM_KEY``.

    Raises ConfigError when there is none or it is too short to be a secret.
    """
    key = explicit if explicit is not None else environment(KEY_ENV)
    if not key:
        raise ConfigError(
            f"export.pseudonymize is on but no key is set: export {KEY_ENV} or add the Airflow connection "
            f"{CONNECTION_ID!r} with the key as its password"
        )
    raw = key.encode() if isinstance(key, str) else key
    if len(raw) < _MIN_KEY_BYTES:
        raise ConfigError(f"the pseudonymisation key must be at least {_MIN_KEY_BYTES} bytes long")
    return raw


def airflow_connection_key(conn_id: str = CONNECTION_ID) -> str | None:
    """The key stored as the password of Airflow connection ``conn_id``, for DAG tasks to pass in;
    None when the connection is not defined (the environment variable is then the fallback)."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return Connection.get(conn_id).password or None
    except AirflowNotFoundException:
        return None


def pseudonymize(ids: np.ndarray, key: bytes) -> np.ndarray:
    """HMAC-SHA256 of each id under ``key``, as 32 hex characters (128 bits)."""
    return np.array([hmac.new(key, str(i).encode(), hashlib.sha256).hexdigest()[:32] for i in ids], dtype=object)
