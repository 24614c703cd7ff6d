"""The operators' "Recommendations" page: what is champion, how training runs compare, what was
published, whether the last data passed validation, and what the champion/challenger experiment's
shoppers did (outcome reports charted over export dates, with the verdict).

:mod:`.overview` gathers it from MLflow and S3 (each source may be unreachable: the page says so
and shows the rest); :mod:`.app` serves it as a FastAPI app, which the Airflow plugin in
:mod:`.plugin` (the ``airflow.plugins`` entry point) mounts on the API server behind Airflow's
authentication; :mod:`.outcomes` renders the experiment section and :mod:`.profiles` the
shoppers' segments, with the inline-SVG charts of :mod:`.charts` (no script, no network).
"""
