"""Which arm of the experiment a user is in: a keyed hash of the user id and the experiment name.

The hash (BLAKE2b keyed with the experiment name) is deterministic, so a user stays in one arm
every day for as long as the experiment keeps its name, and it does not depend on the
pseudonymisation key, the model or the date. Its first 8 bytes, read as a fraction of 2**64, are
uniform on [0, 1): the users below ``challenger_share`` get the challenger.
"""

from __future__ import annotations

import hashlib
from typing import Final

import numpy as np

from recsys_lib.errors import ConfigError
from recsys_lib.schema import CHALLENGER, CHAMPION

__all__ = ["ARMS", "CHALLENGER", "CHAMPION", "bucket", "in_challenger_arm"]

ARMS: Final = (CHAMPION, CHALLENGER)  # arms are named after the registry alias whose version serves them
_SCALE = float(2**64)


def bucket(user_ids: np.ndarray, experiment: str) -> np.ndarray:
    """``(n,)`` float64 in [0, 1): each user's position in the experiment's hash order."""
    key = experiment.encode()
    if not 0 < len(key) <= 64:
        raise ConfigError(f"experiment.name must be 1 to 64 bytes, got {experiment!r}")
    out = np.empty(len(user_ids), dtype=np.float64)
    for row, user in enumerate(user_ids):
        digest = hashlib.blake2b(str(user).encode(), key=key, digest_size=8).digest()
        out[row] = int.from_bytes(digest, "big") / _SCALE
    return out


def in_challenger_arm(user_ids: np.ndarray, experiment: str, challenger_share: float) -> np.ndarray:
    """``(n,)`` bool: whether each user gets the challenger's recommendations."""
    if not 0.0 <= challenger_share < 1.0:
        raise ConfigError(f"experiment.challenger_share must be in [0, 1), got {challenger_share}")
    if challenger_share == 0.0:
        return np.zeros(len(user_ids), dtype=bool)
    return bucket(user_ids, experiment) < challenger_share
