"""MLflow *model from code* entry point: MLflow executes this file when the model is loaded.

Never import this module from library code: its only job is the ``set_model`` call below. Where
``recsys_lib`` is not installed (``mlflow models serve`` in a fresh environment), the sources the
model carries (``code/recsys_lib.zip``, which MLflow's code path puts next to ``sys.path``) are
imported from the zip.
"""

import importlib.util
import sys
from pathlib import Path

from mlflow.models import set_model

if importlib.util.find_spec("recsys_lib") is None:
    for entry in list(sys.path):
        archive = Path(entry or ".") / "recsys_lib.zip"
        if archive.is_file():
            sys.path.insert(0, str(archive))
            break

from recsys_lib.registry.pyfunc import RecommenderPyfunc  # after the path is set

set_model(RecommenderPyfunc())
