"""``recsys serve``: the champion model answering live requests over HTTP.

:mod:`~recsys_lib.live.source` loads the champion of a dataset from the MLflow registry and binds
it to the features of the newest published export (what the export scored from);
:mod:`~recsys_lib.live.holder` keeps the loaded model and swaps in a new champion when the alias
moves; :mod:`~recsys_lib.live.app` is the FastAPI application. The scoring itself is
:class:`~recsys_lib.serving.live.LiveScorer`, next to the batch export's scorer.
"""
