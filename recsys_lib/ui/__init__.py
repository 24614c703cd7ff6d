"""The operators' "Recommendations" page: what is champion, how training runs compare, what was
published and whether the last data passed validation.

:mod:`.overview` gathers it from MLflow and S3 (each source may be unreachable: the page says so
and shows the rest); :mod:`.app` serves it as a FastAPI app, which the Airflow plugin in
``plugins/`` mounts on the API server behind Airflow's authentication.
"""
