"""The ``mlflow.pyfunc`` face of a model bundle: user ids in, ranked items out.

Logged as a *model from code* (``pyfunc_entry.py``), so loading it executes our installed code and
reads plain files; nothing is unpickled. Weights, id maps and config travel as the ``bundle``
artifact (see :mod:`recsys_lib.serving.bundle`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel

from recsys_lib import schema
from recsys_lib.serving.bundle import ModelBundle

BUNDLE_ARTIFACT = "bundle"
ZIPPED_CODE = "recsys_lib.zip"
"""This package's sources as the model carries them (MLflow ``code_paths``; see pyfunc_entry.py)."""
DEFAULT_K = 10


class RecommenderPyfunc(PythonModel):
    """``predict(DataFrame[user_id], params={"k": 10}) -> DataFrame[user_id, rank, item_id, score]``."""

    bundle: ModelBundle

    def load_context(self, context: Any) -> None:
        """Load the bundle from the model's ``bundle`` artifact (plain files: nothing is unpickled)."""
        self.bundle = ModelBundle.load(context.artifacts[BUNDLE_ARTIFACT])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Top ``params["k"]`` (default :data:`DEFAULT_K`) per ``user_id`` of ``model_input``, items
        the user met excluded, users the model never met served the popularity fallback; a long
        frame of user_id, rank (1-based), item_id, score."""
        k = int((params or {}).get("k", DEFAULT_K))
        users = model_input[schema.USER_ID].astype(str).to_numpy()
        return self.bundle.recommend_ids(users, k)
