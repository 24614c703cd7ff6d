"""MLflow *model from code* entry point: MLflow executes this file when the model is loaded.

Never import this module from library code: its only job is the ``set_model`` call below.
"""

from mlflow.models import set_model

from recsys_lib.registry.pyfunc import RecommenderPyfunc

set_model(RecommenderPyfunc())
